"""`make screenshots`: the key pages of the demo, rendered by Debian's Chromium into
docs/screenshots/ (small palette PNGs, committed and shown in the README).

Not collected by the normal test run (the name does not start with `test_`): run it as
`pytest tests/browser/screenshots.py` with ORDERLY_SCREENSHOT_DIR set (the Makefile does)."""
from __future__ import annotations

import io
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone
from PIL import Image

from basket.services import SelectionRequest, basket_add_selection
from orders import build, progress, services
from orders.models import Order, OrderDataFile, SubOrder, SubOrderState
from orders.staging import suborder_stage
from portal.catalog.models import DataObject
from portal.tenancy.models import Project, User
from portal.tenancy.scope import project_scope

from .helpers import PHONE, horizontal_overflow

pytestmark = pytest.mark.browser
DESKTOP = {"width": 1100, "height": 760}
COLOURS = 64  # palette size: keeps each PNG a few tens of KB


def _save(page, folder: Path, name: str, *, full_page: bool = False) -> Path:
    raw = page.screenshot(full_page=full_page)
    image = Image.open(io.BytesIO(raw)).convert("RGB")
    if full_page and image.height > 1600:
        image = image.crop((0, 0, image.width, 1600))
    path = folder / name
    image.quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path


def _order(project, user, query: str, label: str) -> Order:
    with project_scope(project):
        basket_add_selection(project=project, owner=user, selection=SelectionRequest(query=query))
        order = services.order_create(project=project, owner=user, label=label)
        build.order_build(project=project, order_id=order.pk)
        return order


def _stage(project, order: Order, count: int) -> None:
    with project_scope(project):
        for sub_order in SubOrder.objects.filter(order_id=order.pk, state=SubOrderState.STAGING).order_by("id")[:count]:
            suborder_stage(project=project, sub_order_id=sub_order.pk)


def _history(project, user) -> None:
    """A month of activity for the admin overview: past orders, some of their files downloaded."""
    now = timezone.now()
    for i, days_ago in enumerate((27, 21, 20, 14, 9, 9, 6, 3, 2, 1)):
        order = _order(project, user, f'dataset:"Climate series" AND label:*{days_ago:02d}',
                       f"Climate series, batch {i + 1}")
        _stage(project, order, 5)
        with project_scope(project):
            ready = list(OrderDataFile.objects.filter(order_id=order.pk, state="AVAILABLE").values_list("id", flat=True))
            progress.order_files_mark_downloaded(project=project, order=Order.objects.get(pk=order.pk), file_ids=ready)
        when = now - timedelta(days=days_ago, hours=3)
        Order.unscoped_objects.filter(pk=order.pk).update(creation_date=when, expiration_date=when + timedelta(days=30))
        OrderDataFile.unscoped_objects.filter(order_id=order.pk, state="DOWNLOADED").update(state_date=when)


def test_screenshots_of_the_demo(transactional_db, chromium, live_server):
    folder = Path(os.environ.get("ORDERLY_SCREENSHOT_DIR") or "docs/screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    call_command("build_demo")
    project = Project.objects.get(slug="demo")
    user = User.objects.get(email="user@demo.orderly")
    project.suborder_max_files = 4
    project.user_max_suborders = 100  # every sub-order stages at once: progress shows
    project.save()
    _history(project, user)
    running = _order(project, user, 'dataset:"Optical scenes" AND label:*000?', "Optical scenes, first ten")
    _stage(project, running, 1)
    waiting = _order(project, user, 'dataset:"Radar swaths" AND label:*001?', "Radar swaths for the flood study")
    Order.unscoped_objects.filter(pk=waiting.pk).update(waiting_for_user=True)
    with project_scope(project):
        basket_add_selection(project=project, owner=user, selection=SelectionRequest(
            included_ip_ids=tuple(DataObject.objects.filter(label__startswith="Optical scene 01").order_by("label")
                                  .values_list("ip_id", flat=True)[:6])))

    base = f"{live_server.url}/projects/demo"
    shots = []

    def session(email, password, viewport):
        context = chromium.new_context(viewport=viewport)
        page = context.new_page()
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", email)
        page.fill("#id_password", password)
        page.click("main button[type=submit]")
        page.wait_for_load_state()
        return context, page

    def shot(page, url, name, full_page=False):
        page.goto(url)
        page.wait_for_load_state("load")
        # Lazy images below the fold never load: wait for the others, at most 5 s.
        page.evaluate("""Promise.race([new Promise(r => setTimeout(r, 5000)),
            Promise.all([...document.images].filter(i => i.getBoundingClientRect().top < innerHeight)
                        .map(i => i.decode().catch(() => null)))])""")
        assert horizontal_overflow(page) <= 0, url
        shots.append(_save(page, folder, name, full_page=full_page))

    context, page = session("user@demo.orderly", "demo-user-pass", DESKTOP)
    shot(page, f'{base}/search/?q=dataset:%22Optical+scenes%22+AND+tags:clear&sort=newest', "search.png")
    shot(page, f"{base}/basket/", "basket.png")
    shot(page, f"{base}/orders/", "orders.png")
    shot(page, f"{base}/orders/{running.pk}/", "order-in-progress.png")
    context.close()

    context, page = session("user@demo.orderly", "demo-user-pass", PHONE)
    shot(page, f"{base}/orders/", "phone-orders.png")
    shot(page, f'{base}/search/?q=dataset:%22Optical+scenes%22', "phone-search.png")
    context.close()

    context, page = session("admin@demo.orderly", "demo-admin-pass", DESKTOP)
    shot(page, f"{live_server.url}/admin/", "admin-overview.png")
    context.close()

    total = sum(p.stat().st_size for p in shots)
    print(f"{len(shots)} screenshots, {total // 1024} KB in all, in {folder}")
    assert all(p.stat().st_size > 5000 for p in shots)
    assert total < 600 * 1024
