"""The people-facing pages in a real headless Chromium: search -> basket -> order, and the
order page following the order's progress live (Server-Sent Events)."""
from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from orders import build, progress, services
from orders.models import Order, OrderDataFile, SubOrder, SubOrderState
from orders.staging import suborder_stage
from portal.tenancy.scope import project_scope
from tests.conftest import make_member
from tests.orders.conftest import fill_basket, make_objects, reload

pytestmark = pytest.mark.browser


def _shot_path(tmp_path, name: str) -> str:
    folder = os.environ.get("ORDERLY_SCREENSHOT_DIR") or str(tmp_path)
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, name)


def test_search_add_to_basket_create_order_and_see_it(transactional_db, page, live_server, login, project, tmp_path):
    member = make_member(project, email="ann@example.org")
    objects = make_objects(project, count=4, files=(("RAWDATA", 200),), label="Optical scenes")
    login(member.user.email)
    page.click("text=Alpha archive")
    page.click("header >> text=Search")
    # A malformed query: the error and its position, no crash.
    page.fill("input[name=q]", 'label:"open')
    page.click("form >> text=Search")
    expect(page.locator("#query-error")).to_contain_text("Invalid query at position")

    page.fill("input[name=q]", "dataset:\"Optical scenes\"")
    page.click("form >> text=Search")
    expect(page.locator("#result-count")).to_contain_text("4 data objects match")
    page.locator(f'tr[data-ip-id="{objects[1].ip_id}"] button').click()
    expect(page.locator(".messages")).to_contain_text("Added 1 object to your basket.")

    page.click("header >> text=Basket")
    expect(page.locator("#basket-totals")).to_contain_text("1 object, 1 file")
    page.fill("#id_label", "From the browser")
    page.click("#create-order button")
    page.wait_for_url(re.compile(r"/projects/alpha/orders/\d+/$"))
    assert page.locator("h1").inner_text() == "From the browser"
    assert page.locator("#order-status").inner_text() == "PENDING"
    order = Order.unscoped_objects.get(project=project, owner=member.user)
    assert order.label == "From the browser"

    page.click("text=← Orders")
    expect(page.locator("#orders")).to_contain_text("From the browser")
    page.screenshot(path=_shot_path(tmp_path, "order-history.png"), full_page=True)


def test_order_page_follows_progress_live(transactional_db, page, live_server, login, project, tmp_path):
    project.suborder_max_files = 1  # one sub-order per file: progress in steps
    project.user_max_suborders = 2
    project.save()
    member = make_member(project, email="bob@example.org")
    objects = make_objects(project, count=3, files=(("RAWDATA", 1000),), label="Radar scenes")
    fill_basket(member, objects)
    with project_scope(project):
        order = services.order_create(project=project, owner=member.user, label="Live one")
    login(member.user.email)
    page.goto(f"{live_server.url}/projects/alpha/orders/{order.pk}/")
    assert page.locator("#order-status").inner_text() == "PENDING"
    page.wait_for_selector("#live-indicator:not([hidden])")  # the EventSource is connected
    assert page.locator("#zip-link").is_hidden()

    with project_scope(project):
        build.order_build(project=project, order_id=order.pk)
    page.wait_for_function("document.getElementById('order-status').textContent === 'RUNNING'")
    # The file list appears by itself once the build listed the files.
    page.wait_for_selector("#files tr[data-file-id]")
    assert page.locator("#files tr[data-file-id]").count() == 3
    assert page.locator("#files-fact").inner_text().startswith("3 (")
    staging = list(SubOrder.unscoped_objects.filter(order_id=order.pk, state=SubOrderState.STAGING)
                   .order_by("id").values_list("id", flat=True))
    assert len(staging) == 2  # the third waits for the user

    with project_scope(project):
        suborder_stage(project=project, sub_order_id=staging[0])
    page.wait_for_function("document.getElementById('order-progress').value === 33")
    assert page.locator("#order-percent").inner_text() == "33%"
    assert page.locator("#zip-link").is_visible()  # files are available: the download link appears
    # The newly available file's row gets its download link.
    page.wait_for_selector("#files tr[data-file-id] .link a")
    assert page.locator("#files tr[data-file-id] .link a").count() == 1

    with project_scope(project):
        suborder_stage(project=project, sub_order_id=staging[1])
    page.wait_for_function("document.getElementById('order-progress').value === 66")
    page.wait_for_selector("#waiting-notice:not([hidden])")
    assert reload(order).waiting_for_user
    page.screenshot(path=_shot_path(tmp_path, "order-live.png"), full_page=True)

    # The user downloads what is ready (as a zip would mark it): the last sub-order runs.
    with project_scope(project):
        ready = list(OrderDataFile.objects.filter(order_id=order.pk, state="AVAILABLE").values_list("id", flat=True))
        progress.order_files_mark_downloaded(project=project, order=reload(order), file_ids=ready)
        last = SubOrder.objects.get(order_id=order.pk, state=SubOrderState.STAGING).pk
        suborder_stage(project=project, sub_order_id=last)
    page.wait_for_function("document.getElementById('order-status').textContent === 'DONE'")
    assert page.locator("#order-progress").get_attribute("value") is not None
    assert page.evaluate("document.getElementById('order-progress').value") == 100
    assert page.locator("#waiting-notice").is_hidden()
    page.wait_for_selector("#live-indicator[hidden]", state="attached")  # `end`: the stream closed
    # Buttons follow the transitions table: DONE offers restart and delete, no pause.
    assert page.locator('#actions form[data-rel="pause"]').is_hidden()
    assert page.locator('#actions form[data-rel="delete"]').is_visible()
    page.screenshot(path=_shot_path(tmp_path, "order-done.png"), full_page=True)
