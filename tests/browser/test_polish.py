"""People-facing polish in a real Chromium: previews, phones, the waiting state, the admin
overview and keyboard-only use."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries import preparation
from deliveries.models import Delivery
from orders import build
from orders.models import Order, OrderDataFile, SubOrder
from orders.staging import suborder_stage
from portal.tenancy.models import Role
from portal.tenancy.scope import project_scope
from tests.conftest import make_member
from tests.orders.conftest import fill_basket, make_objects, order_of

from .helpers import LOW_CONTRAST_JS, PHONE, horizontal_overflow, pictured_objects, tab_to

pytestmark = pytest.mark.browser


def test_search_results_load_their_thumbnails_and_open_the_quicklook(transactional_db, page, live_server, login,
                                                                     project):
    objects = pictured_objects(project)
    member = make_member(project, email="ann@example.org")
    images = []
    page.on("response", lambda r: images.append(r) if "/rs-catalog/" in r.url else None)
    login(member.user.email)
    page.goto(f"{live_server.url}/projects/alpha/search/?q=")
    thumbnails = page.locator("#results img")
    assert thumbnails.count() == len(objects)
    for i in range(thumbnails.count()):
        thumbnails.nth(i).scroll_into_view_if_needed()
        thumbnails.nth(i).evaluate("img => img.decode()")
        assert thumbnails.nth(i).evaluate("img => img.naturalWidth") == 24
        assert thumbnails.nth(i).get_attribute("loading") == "lazy"
        assert thumbnails.nth(i).get_attribute("alt") == f"Preview of {objects[i].label}"
    assert len(images) >= len(objects) and {r.status for r in images} <= {200, 304}
    assert any(r.status == 200 and r.headers.get("etag") and "max-age" in r.headers.get("cache-control", "")
               for r in images)
    # A click opens the quicklook (in a dialog; Escape closes it and focus returns).
    thumbnails.first.click()
    dialog = page.locator("dialog#quicklook")
    dialog.wait_for(state="visible")
    page.wait_for_function("document.querySelector('#quicklook img').naturalWidth === 96")
    assert dialog.locator("img").get_attribute("alt") == f"Quicklook of {objects[0].label}"
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert page.evaluate("document.activeElement.classList.contains('preview')")


@pytest.fixture
def static_order_pages(settings):
    """Order pages without their live stream (not what these tests look at): no server thread
    keeps polling the database after the test."""
    settings.ORDER_EVENTS_MAX_STREAMS = 0


def test_no_page_scrolls_sideways_on_a_phone(transactional_db, chromium, live_server, project, static_order_pages):
    member = make_member(project, email="a.rather.long.address.for.phones@example.org")
    objects = pictured_objects(project)
    order = order_of(member, objects[:2], label="A long order label to wrap")
    with project_scope(project):
        build.order_build(project=project, order_id=order.pk)
    Order.unscoped_objects.filter(pk=order.pk).update(waiting_for_user=True)
    fill_basket(member, objects)
    admin = make_member(project, Role.ADMIN, email="boss@example.org")
    admin.user.is_staff = True
    admin.user.save()
    A = f"{live_server.url}/projects/alpha"
    pages = [(member, ["/accounts/login/", "/", f"{A}/", f"{A}/search/?q=", f"{A}/search/?q=label:%22open",
                      f"{A}/basket/", f"{A}/orders/", f"{A}/orders/{order.pk}/", f"{A}/settings/webhooks/"]),
             (admin, [f"{A}/orders/", f"{A}/orders/{order.pk}/", "/admin/"])]
    for who, urls in pages:
        context = chromium.new_context(viewport=PHONE)
        page = context.new_page()
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", who.user.email)
        page.fill("#id_password", "pass-word-123")
        page.click("main button[type=submit]")
        page.wait_for_load_state()
        for url in urls:
            page.goto(url if url.startswith("http") else live_server.url + url)
            assert horizontal_overflow(page) <= 0, url
            if "/admin/" not in url:  # our pages' text meets WCAG AA contrast
                assert page.evaluate(LOW_CONTRAST_JS) == [], url
        context.close()


def test_waiting_state_and_order_name_are_both_visible_and_clickable(transactional_db, page, live_server, login,
                                                                     project, static_order_pages):
    member = make_member(project, email="ann@example.org")
    order = order_of(member, make_objects(project, count=1), label="Waiting order with a long name")
    Order.unscoped_objects.filter(pk=order.pk).update(waiting_for_user=True,
                                                      expiration_date=timezone.now() + timedelta(days=3, hours=2, minutes=5))
    login(member.user.email)
    for viewport in ({"width": 1280, "height": 800}, PHONE):
        page.set_viewport_size(viewport)
        page.goto(f"{live_server.url}/projects/alpha/orders/")
        row = page.locator(f'tr[data-order-id="{order.pk}"]')
        name, waiting = row.locator("a.order-name"), row.locator("a.waiting")
        assert name.is_visible() and waiting.is_visible()
        assert waiting.inner_text() == "Waiting for you"
        assert re.search(r"3\s+days, 2\s+hours left", row.locator(".time-left").inner_text())
        a, b = name.bounding_box(), waiting.bounding_box()
        overlap = not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                       or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])
        assert not overlap, (a, b)
        # What is drawn at the name's centre is the name's link (nothing lies on top of it).
        assert page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('a.order-name') !== null",
                             [a["x"] + a["width"] / 2, a["y"] + a["height"] / 2])
        name.click()
        page.wait_for_url(re.compile(rf"/orders/{order.pk}/$"))
        page.go_back()
        page.locator(f'tr[data-order-id="{order.pk}"] a.waiting').click()
        page.wait_for_url(re.compile(rf"/orders/{order.pk}/$"))


def test_admin_overview_chart_for_a_project_admin_and_nothing_of_another_project(
        transactional_db, page, live_server, login, two_projects):
    alpha, beta = two_projects
    member = make_member(alpha, email="ann@example.org")
    order = order_of(member, make_objects(alpha, count=2), label="alpha order")
    with project_scope(alpha):
        build.order_build(project=alpha, order_id=order.pk)
    OrderDataFile.unscoped_objects.filter(order_id=order.pk).update(state="DOWNLOADED")
    order_of(make_member(beta, email="bob@example.org"), make_objects(beta, count=3, label="Beta only set"),
             label="beta order")
    admin = make_member(alpha, Role.ADMIN, email="boss@example.org")
    admin.user.is_staff = True
    admin.user.save()
    login(admin.user.email)
    page.goto(f"{live_server.url}/admin/")
    chart = page.locator("#orders-chart")
    assert chart.is_visible() and chart.bounding_box()["width"] > 200
    assert page.locator("#orders-chart rect").count() == 30
    assert page.locator("#bytes-chart rect").count() == 30
    heights = page.locator("#orders-chart rect").evaluate_all("rs => rs.map(r => +r.getAttribute('height'))")
    assert heights[-1] > 0 and sum(1 for h in heights if h > 0) == 1  # one order, today
    assert page.locator('#delivery-cache tr[data-project="alpha"]').is_visible()
    text = page.locator("#overview").inner_text()
    assert "Beta archive" not in text and page.locator('[data-project="beta"]').count() == 0
    assert "Orders created per day (1 in all)" in text


def test_keyboard_only_log_in_search_add_to_basket_and_order(transactional_db, page, live_server, project,
                                                             static_order_pages):
    objects = pictured_objects(project)
    member = make_member(project, email="keys@example.org")
    page.goto(f"{live_server.url}/accounts/login/")
    tab_to(page, "#id_username")
    page.keyboard.type(member.user.email)
    tab_to(page, "#id_password")
    page.keyboard.type("pass-word-123")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/")
    tab_to(page, 'main a[href="/projects/alpha/"]')
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/projects/alpha/$"))
    tab_to(page, 'header a[href="/projects/alpha/search/"]')
    # Focus is visible (an outline drawn by :focus-visible).
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/search/"))
    tab_to(page, "#id_q")
    page.keyboard.type('dataset:"Optical scenes"')
    page.keyboard.press("Enter")
    page.wait_for_selector("#results")
    assert "3 data objects match" in page.locator("#result-count").inner_text()
    tab_to(page, f'tr[data-ip-id="{objects[1].ip_id}"] button')
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Enter")
    page.wait_for_selector(".messages")
    assert "Added 1 object to your basket." in page.locator(".messages").inner_text()
    tab_to(page, 'header a[href="/projects/alpha/basket/"]')
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/basket/$"))
    tab_to(page, "#id_label")
    page.keyboard.type("By keyboard")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/projects/alpha/orders/\d+/$"))
    assert page.locator("h1").inner_text() == "By keyboard"
    assert Order.unscoped_objects.get(project=project, owner=member.user).label == "By keyboard"


def test_prepare_an_archive_from_the_order_page_and_download_it(transactional_db, page, live_server, login, project,
                                                                static_order_pages):
    member = make_member(project, email="ann@example.org")
    order = order_of(member, make_objects(project, count=2), label="To archive")
    with project_scope(project):
        build.order_build(project=project, order_id=order.pk)
        for sub_order in SubOrder.objects.filter(order_id=order.pk, state="STAGING"):
            suborder_stage(project=project, sub_order_id=sub_order.pk)
    login(member.user.email)
    page.goto(f"{live_server.url}/projects/alpha/orders/{order.pk}/")
    page.click("#prepare-archive button")
    page.wait_for_url(re.compile(rf"/archives/{order.pk}/$"))
    assert page.locator("#archive-status").inner_text() == "pending"
    assert page.locator("#archive-state").get_attribute("aria-live") == "polite"
    delivery = Delivery.unscoped_objects.get(project=project, catalog_id=f"order-{order.pk}")
    with project_scope(project):  # the worker's job, done here
        preparation.delivery_build(project=project, delivery_id=delivery.pk, generation=delivery.generation)
    # The page follows the preparation by itself and then offers the archive.
    link = page.locator("#archive-link")
    link.wait_for(state="visible")
    with page.expect_download() as download:
        link.click()
    with open(download.value.path(), "rb") as archive:
        assert archive.read(2) == b"PK"
