"""In a real headless Chromium: a member registers a webhook endpoint on the project settings
page (the secret is shown once), sends a test ping and sees it in the recent deliveries; on
the order page the Extend button moves the expiration date and the history shows it."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from orders.models import Order, OrderEvent
from portal.webhooks.models import WebhookEndpoint, WebhookMessage
from tests.conftest import make_member
from tests.orders.conftest import make_objects, order_of, reload

pytestmark = pytest.mark.browser


def test_manage_webhooks_on_the_settings_page(transactional_db, page, live_server, login, project, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    member = make_member(project, email="hook@example.org")
    login(member.user.email)
    page.goto(f"{live_server.url}/projects/alpha/")
    page.click("header >> text=Webhooks")
    # A click does not wait for the next page to load: `expect` retries until it has.
    page.wait_for_url(re.compile(r"/settings/webhooks/$"))
    expect(page.locator("#no-endpoints")).to_be_visible()
    page.fill("#id_url", "http://127.0.0.1:9/receiver")
    page.uncheck("input[value='order.waiting_for_user']")
    page.fill("#id_description", "lab receiver")
    page.click("#webhook-create button")
    expect(page.locator("#secret")).to_be_visible()  # the response is shown, so the row is committed
    endpoint = WebhookEndpoint.unscoped_objects.get(project=project)
    assert page.locator("#secret").inner_text() == endpoint.secret
    assert "order.waiting_for_user" not in endpoint.events and "order.created" in endpoint.events
    # shown once: a reload of the page no longer has it
    page.goto(f"{live_server.url}/projects/alpha/settings/webhooks/")
    assert page.locator("#secret").count() == 0 and endpoint.secret not in page.content()
    page.click("text=Send a test ping")
    expect(page.locator(".messages")).to_contain_text("Ping queued")
    message = WebhookMessage.unscoped_objects.get(endpoint=endpoint)
    assert message.event_type == "ping"
    assert message.msg_id in page.locator(f'section[data-endpoint-id="{endpoint.pk}"] table').inner_text()
    page.click("text=Delete")
    # the page before had a message too ("Ping queued"): wait for the new one
    expect(page.locator(".messages")).to_contain_text("Webhook endpoint deleted.")
    assert not WebhookEndpoint.unscoped_objects.exists()


def test_extend_from_the_order_page(transactional_db, page, live_server, login, project, run_tasks):
    member = make_member(project, email="keeper@example.org")
    order = order_of(member, make_objects(project, count=1), run=run_tasks, label="keep me")
    # an hour before it expires: the page says how to extend
    Order.unscoped_objects.filter(pk=order.pk).update(expiration_date=timezone.now() + timedelta(hours=1))
    login(member.user.email)
    page.goto(f"{live_server.url}/projects/alpha/orders/{order.pk}/")
    assert "Extend" in page.locator("#expiry-notice").inner_text()
    before = reload(order).expiration_date
    page.click("form[data-rel=extend] button")
    expect(page.locator(".messages")).to_contain_text("Order extended")
    assert reload(order).expiration_date > before
    assert "Extended" in page.locator("#order-history").inner_text()
    assert OrderEvent.unscoped_objects.filter(order_id=order.pk, kind="extended").count() == 1
