"""Previews, the search form's fields, the waiting state, the live file list fragment, the
prepared-archive page and the admin overview, through Django's test client."""
from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.test import Client
from django.utils import timezone

from deliveries.models import Delivery, DeliveryStatus
from orders.models import Order, OrderDataFile
from portal.catalog.models import DataObject
from portal.catalog.search_form import query_from_fields
from portal.tenancy.models import Role
from tests.conftest import make_member
from tests.orders.conftest import make_objects, order_of

from .conftest import logged_in

A = "/projects/alpha"
IMAGES = (("RAWDATA", 300), ("THUMBNAIL", 40), ("QUICKLOOK_SD", 80), ("QUICKLOOK_HD", 120))


def _html(response) -> str:
    return response.content.decode()


def _previews(html: str) -> list[tuple[str, str, str]]:
    """(quicklook href, thumbnail src, alt) of every preview."""
    return [(unescape(a), unescape(s), alt) for a, s, alt in re.findall(
        r'<a class="preview" href="([^"]+)"[^>]*><img src="([^"]+)" alt="([^"]+)" loading="lazy"', html)]


# --- previews ----------------------------------------------------------------------------

def test_search_results_show_the_thumbnail_that_opens_the_quicklook(web, project):
    objects = make_objects(project, count=2, files=IMAGES, label="Optical")
    html = _html(web.get(f"{A}/search/?q="))
    previews = _previews(html)
    assert len(previews) == 2
    for obj, (quicklook, thumbnail, alt) in zip(objects, previews):
        files = {f.data_type: f for f in obj.files.model.unscoped_objects.filter(data_object=obj)}
        assert thumbnail.endswith(f"/{files['THUMBNAIL'].checksum}?scope=alpha") and obj.ip_id in thumbnail
        assert quicklook.endswith(f"/{files['QUICKLOOK_HD'].checksum}?scope=alpha")
        assert alt == f"Preview of {obj.label}"
        # Served by the catalog file endpoint with caching headers; a revalidation is a 304.
        response = web.get(thumbnail)
        assert response.status_code == 200 and response["Cache-Control"].startswith("private, max-age=")
        assert web.get(thumbnail, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


def test_objects_without_an_online_image_show_no_preview(web, project):
    make_objects(project, count=1, files=(("RAWDATA", 10),))
    make_objects(project, count=1, files=(("RAWDATA", 10), ("THUMBNAIL", 10)), tier="NEARLINE", label="Tape")
    html = _html(web.get(f"{A}/search/?q="))
    assert _previews(html) == [] and html.count('aria-label="No preview"') == 2


def test_the_basket_and_the_order_page_show_previews(web, member, project, run_tasks):
    objects = make_objects(project, count=3, files=IMAGES)
    order = order_of(member, objects[:2], run=run_tasks)
    order_html = _html(web.get(f"{A}/orders/{order.pk}/"))
    # One preview per file row (the files of an object share its preview).
    assert len(_previews(order_html)) == order_html.count("<tr data-file-id=") > 0
    web.post(f"{A}/basket/add", {"q": ""})
    assert len(_previews(_html(web.get(f"{A}/basket/")))) == 3


def test_order_page_previews_do_not_grow_queries_with_files(web, member, project, run_tasks,
                                                             django_assert_max_num_queries):
    order = order_of(member, make_objects(project, count=20, files=IMAGES), run=run_tasks)
    with django_assert_max_num_queries(14):
        html = _html(web.get(f"{A}/orders/{order.pk}/"))
    assert html.count("<tr data-file-id=") == 20 and len(_previews(html)) == 20


# --- search form ---------------------------------------------------------------------------

@pytest.mark.parametrize("fields, expected", [
    ({"q": "", "dataset": "Optical scenes"}, 'dataset:"Optical scenes"'),
    ({"q": "night", "date_from": "2024-01-01"}, "night AND creationDate:[2024-01-01 TO *]"),
    ({"q": "a OR b", "date_to": "2024-02-01", "tags": "clear, cold"},
     '(a OR b) AND creationDate:[* TO 2024-02-01] AND tags:"clear" AND tags:"cold"'),
    ({"q": "", "dataset": 'Say "hi"'}, r'dataset:"Say \"hi\""'),
])
def test_fields_become_query_clauses(fields, expected):
    assert query_from_fields(**fields).q == expected


def test_the_form_fields_build_the_shown_query_then_it_runs(web, project):
    objects = make_objects(project, count=3, label="Optical scenes")
    make_objects(project, count=2, label="Radar")
    DataObject.unscoped_objects.filter(pk=objects[0].pk).update(tags=["clear"], tags_index="|clear|")
    response = web.get(f"{A}/search/", {"q": "", "dataset": "Optical scenes", "tags": "clear", "sort": "newest"})
    assert response.status_code == 302
    response = web.get(response["Location"])
    html = _html(response)
    assert response.context["q"] == 'dataset:"Optical scenes" AND tags:"clear"'
    assert 'value="dataset:&quot;Optical scenes&quot; AND tags:&quot;clear&quot;"' in html  # shown, editable
    assert "1 data object matches" in html and objects[0].ip_id in html


def test_a_bad_date_is_said_and_nothing_runs(web, project):
    response = web.get(f"{A}/search/", {"q": "", "date_from": "yesterday"})
    assert response.status_code == 200 and "From must be a date" in _html(response)
    assert 'id="results"' not in _html(response)


def test_sort_by_date_both_ways(web, project):
    objects = make_objects(project, count=3)
    for days, obj in enumerate(objects):
        DataObject.unscoped_objects.filter(pk=obj.pk).update(creation_date=timezone.now() - timedelta(days=days))
    order = lambda html: re.findall(r'<tr data-ip-id="([^"]+)"', html)  # noqa: E731
    oldest = order(_html(web.get(f"{A}/search/?q=&sort=oldest")))
    newest = order(_html(web.get(f"{A}/search/?q=&sort=newest")))
    assert newest == [o.ip_id for o in objects] and oldest == newest[::-1]
    assert '<option value="newest" selected>' in _html(web.get(f"{A}/search/?q=&sort=newest"))


# --- order list and page ---------------------------------------------------------------------

def test_waiting_is_a_state_beside_the_status_with_time_left(web, member, project, scenes):
    order = order_of(member, scenes, label="mine")
    Order.unscoped_objects.filter(pk=order.pk).update(waiting_for_user=True,
                                                      expiration_date=timezone.now() + timedelta(days=2, hours=1, minutes=5))
    html = _html(web.get(f"{A}/orders/"))
    row = re.search(rf'<tr data-order-id="{order.pk}">(.*?)</tr>', html, re.S).group(1)
    assert re.search(r'<a class="order-name" href="[^"]+">mine</a></td>', row)
    status_cell = re.search(r'data-label="Status">(.*?)</td>', row, re.S).group(1)
    assert "PENDING" in status_cell and "Waiting for you</a>" in status_cell
    assert re.search(r"2\xa0days, 1\xa0hour left|2&nbsp;days, 1&nbsp;hour left", row)


def test_the_file_list_fragment_follows_the_build(web, member, project, scenes, run_tasks):
    order = order_of(member, scenes)  # not built yet
    fragment = _html(web.get(f"{A}/orders/{order.pk}/files"))
    assert 'data-built="0"' in fragment and "The files are being listed" in fragment
    from orders import build
    from portal.tenancy.scope import project_scope
    with project_scope(project), run_tasks():
        build.order_build(project=project, order_id=order.pk)
    fragment = _html(web.get(f"{A}/orders/{order.pk}/files"))
    assert 'data-built="1"' in fragment and fragment.count("<tr data-file-id=") == 3
    assert "<html" not in fragment  # a fragment, not a page


def test_another_members_order_files_and_archive_are_forbidden(project, member, scenes):
    order = order_of(member, scenes)
    other = logged_in(make_member(project, email="eve@example.org"))
    assert other.get(f"{A}/orders/{order.pk}/files").status_code == 403
    assert other.post(f"{A}/archives/{order.pk}/prepare").status_code == 403
    assert not Delivery.unscoped_objects.exists()


def test_prepare_an_archive_from_the_order_page(web, member, project, scenes, run_tasks, settings):
    order = order_of(member, scenes, run=run_tasks)
    html = _html(web.get(f"{A}/orders/{order.pk}/"))
    assert re.search(r'id="prepare-archive">', html)  # offered: files are available
    with run_tasks():
        response = web.post(f"{A}/archives/{order.pk}/prepare")
    assert response.status_code == 302 and response["Location"] == f"{A}/archives/{order.pk}/"
    delivery = Delivery.unscoped_objects.get(project=project, catalog_id=f"order-{order.pk}")
    assert delivery.status == DeliveryStatus.DONE
    page = _html(web.get(response["Location"]))
    url = unescape(re.search(r'id="archive-link" href="([^"]+)"', page).group(1))
    archive = web.get(url)
    assert archive.status_code == 200 and b"".join(archive.streaming_content)[:2] == b"PK"


def test_an_archive_of_an_order_not_built_yet_is_refused_with_a_message(web, member, scenes):
    order = order_of(member, scenes)
    response = web.post(f"{A}/archives/{order.pk}/prepare", follow=True)
    assert response.redirect_chain[-1][0] == f"{A}/orders/{order.pk}/"
    assert any("still being built" in str(m) for m in response.context["messages"])
    assert 'id="prepare-archive" hidden' in _html(response)


# --- admin overview --------------------------------------------------------------------------

def _staff(member):
    member.user.is_staff = True
    member.user.save()
    client = Client()
    client.force_login(member.user)
    return client


def test_admin_overview_shows_the_admins_projects_only(project, other_project, member, scenes, run_tasks):
    order = order_of(member, scenes, run=run_tasks)
    OrderDataFile.unscoped_objects.filter(order_id=order.pk).update(state="DOWNLOADED")
    beta_member = make_member(other_project, email="b@beta.org")
    order_of(beta_member, make_objects(other_project, count=5, label="BetaSet"), label="beta-order")

    html = _html(_staff(make_member(project, Role.ADMIN, email="boss@alpha.org")).get("/admin/"))
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html and 'id="orders-chart"' in html
    assert "Orders created per day (1 in all)" in html
    size = sum(OrderDataFile.unscoped_objects.filter(order_id=order.pk).values_list("size", flat=True))
    from django.template.defaultfilters import filesizeformat
    assert f"Bytes delivered per day ({filesizeformat(size)} in all)" in html
    assert 'data-project="alpha"' in html and 'data-project="beta"' not in html
    assert "Beta archive" not in html

    beta_html = _html(_staff(make_member(other_project, Role.ADMIN, email="boss@beta.org")).get("/admin/"))
    assert "Orders created per day (1 in all)" in beta_html and 'data-project="alpha"' not in beta_html


def test_staff_without_an_administered_project_sees_no_overview(project, member):
    html = _html(_staff(member).get("/admin/"))
    assert 'id="overview"' not in html
