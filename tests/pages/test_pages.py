"""People-facing pages through Django's test client: access, CSRF, search, basket, orders."""
from __future__ import annotations

import re

import pytest
from django.test import Client

from basket.models import BasketItemSelection
from orders.models import Order, OrderDataFile, OrderStatus
from portal.tenancy.models import Role
from portal.tenancy.scope import project_scope
from tests.conftest import make_member
from tests.orders.conftest import fill_basket, make_objects, order_of, reload

from .conftest import logged_in

A = "/projects/alpha"


def _html(response) -> str:
    return response.content.decode()


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- access ------------------------------------------------------------------------------

def _page_urls(order_id: int) -> list[str]:
    return [f"{A}/", f"{A}/search/?q=", f"{A}/basket/", f"{A}/orders/", f"{A}/orders/{order_id}/"]


def _post_urls(order_id: int) -> list[str]:
    return [f"{A}/basket/add", f"{A}/basket/remove-items", f"{A}/basket/remove-dataset", f"{A}/basket/empty",
            f"{A}/basket/order", *(f"{A}/orders/{order_id}/{a}" for a in ("pause", "resume", "delete", "remove"))]


def test_anonymous_visitors_are_sent_to_login(project, member, scenes):
    order = order_of(member, scenes)
    for url in _page_urls(order.pk):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_members_of_another_project_get_404_everywhere_and_change_nothing(project, member, scenes, outsider):
    order = order_of(member, scenes, label="alpha-secret")
    fill_basket(member, scenes[:1])
    before = (reload(order).status, BasketItemSelection.unscoped_objects.filter(project=project).count())
    web = logged_in(outsider)
    for url in _page_urls(order.pk):
        response = web.get(url)
        assert response.status_code == 404, url
        assert "alpha-secret" not in _html(response)
    for url in _post_urls(order.pk):
        response = web.post(url, {"ip_id": scenes[0].ip_id, "q": "", "label": "x", "selection_id": "1"})
        assert response.status_code == 404, url
    assert (reload(order).status, BasketItemSelection.unscoped_objects.filter(project=project).count()) == before
    assert Order.unscoped_objects.filter(project=project).count() == 1


def test_unknown_project_is_404(member):
    assert logged_in(member).get("/projects/nope/orders/").status_code == 404


def test_another_users_order_is_forbidden_but_an_admin_sees_it(project, member, scenes):
    order = order_of(member, scenes)
    colleague = make_member(project)
    assert logged_in(colleague).get(f"{A}/orders/{order.pk}/").status_code == 403
    assert logged_in(colleague).post(f"{A}/orders/{order.pk}/pause").status_code == 403
    assert reload(order).status == OrderStatus.PENDING
    admin = make_member(project, Role.ADMIN)
    response = logged_in(admin).get(f"{A}/orders/{order.pk}/")
    assert response.status_code == 200 and member.user.email in _html(response)


def test_posts_need_the_csrf_token(project, member, scenes):
    web = logged_in(member, enforce_csrf=True)
    response = web.post(f"{A}/basket/add", {"ip_id": scenes[0].ip_id})
    assert response.status_code == 403
    assert not BasketItemSelection.unscoped_objects.filter(project=project).exists()
    page = web.get(f"{A}/search/?q=")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', _html(page)).group(1)
    response = web.post(f"{A}/basket/add", {"ip_id": scenes[0].ip_id, "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert BasketItemSelection.unscoped_objects.filter(project=project).count() == 1


def test_get_only_pages_refuse_posts_and_post_only_urls_refuse_gets(web):
    assert web.post(f"{A}/orders/").status_code == 405
    assert web.get(f"{A}/basket/order").status_code == 405


# --- search ------------------------------------------------------------------------------

def test_search_lists_objects_with_dataset_date_and_files(web, scenes):
    response = web.get(f"{A}/search/", {"q": ""})
    html = _html(response)
    assert response.status_code == 200
    assert "3 data objects match" in html
    for obj in scenes:
        assert obj.ip_id in html and obj.label in html
    assert html.count("Add to basket") == 3
    from portal.catalog.models import DataFile
    filename = DataFile.unscoped_objects.filter(data_object=scenes[0]).get().filename
    assert "Scenes" in html and "RAWDATA" in html and filename in html


def test_search_pages(web, project):
    make_objects(project, count=25, label="Many")
    first, second = web.get(f"{A}/search/?q=").content.decode(), web.get(f"{A}/search/?q=&page=2").content.decode()
    assert first.count('data-ip-id="') == 20 and second.count('data-ip-id="') == 5
    assert "Page 1 of 2" in first and "page=2" in first
    # Garbage page numbers are page 1, never an error.
    assert web.get(f"{A}/search/?q=&page=abc").status_code == 200


@pytest.mark.parametrize("q, position", [('label:"unclosed', 6), ("creationDate:[2024 TO", None),
                                         ("nosuchfield:x", 0), ("((((", None)])
def test_a_malformed_query_shows_the_error_with_its_position(web, scenes, q, position):
    response = web.get(f"{A}/search/", {"q": q})
    assert response.status_code == 200
    match = re.search(r"Invalid query at position (\d+)", _html(response))
    assert match, _html(response)
    if position is not None:
        assert int(match.group(1)) == position
    assert 'id="query-error"' in _html(response) and 'id="results"' not in _html(response)


# --- basket ------------------------------------------------------------------------------

def test_add_one_object_then_all_results_then_remove_and_empty(web, project, scenes):
    response = web.post(f"{A}/basket/add", {"ip_id": scenes[0].ip_id, "q": "", "page": "1"}, follow=True)
    assert "Added 1 object to your basket." in _messages(response)
    assert response.redirect_chain[-1][0] == f"{A}/search/?page=1"
    basket = web.get(f"{A}/basket/")
    assert "1 object, 1 file" in _html(basket)

    response = web.post(f"{A}/basket/add", {"q": "dataset:Scenes"}, follow=True)
    assert "Added the results of your search to your basket." in _messages(response)
    html = _html(web.get(f"{A}/basket/"))
    assert "3 objects, 3 files" in html  # the dataset selection is the OR of both items
    assert html.count('name="date"') == 2

    with project_scope(project):
        item = BasketItemSelection.objects.order_by("date").first()
    from basket.dates import format_date
    response = web.post(f"{A}/basket/remove-items", {"selection_id": item.dataset_selection_id,
                                                    "date": format_date(item.date)}, follow=True)
    assert "Selection removed." in _messages(response)
    assert _html(response).count('name="date"') == 1

    response = web.post(f"{A}/basket/empty", follow=True)
    assert "Your basket is empty" in _html(response)
    assert not BasketItemSelection.unscoped_objects.filter(project=project).exists()


def test_add_all_with_a_bad_query_or_nothing_orderable_shows_why(web, project, scenes):
    response = web.post(f"{A}/basket/add", {"q": "label:("}, follow=True)
    assert any("Invalid query at position" in m for m in _messages(response))
    response = web.post(f"{A}/basket/add", {"q": "label:nothing-matches"}, follow=True)
    assert "This selection contains no file that can be ordered" in _messages(response)
    assert not BasketItemSelection.unscoped_objects.filter(project=project).exists()


def test_remove_a_dataset_selection(web, member, project, scenes):
    fill_basket(member, scenes)
    selection_id = BasketItemSelection.unscoped_objects.get(project=project).dataset_selection_id
    response = web.post(f"{A}/basket/remove-dataset", {"selection_id": selection_id}, follow=True)
    assert "Dataset removed from your basket." in _messages(response)
    assert web.post(f"{A}/basket/remove-dataset", {"selection_id": selection_id}).status_code == 404


def test_someone_elses_selection_cannot_be_removed(project, member, scenes):
    fill_basket(member, scenes)
    selection_id = BasketItemSelection.unscoped_objects.get(project=project).dataset_selection_id
    colleague = logged_in(make_member(project))
    assert colleague.post(f"{A}/basket/remove-dataset", {"selection_id": selection_id}).status_code == 404
    assert BasketItemSelection.unscoped_objects.filter(project=project).count() == 1


def test_basket_to_order_flow(web, member, project, scenes):
    fill_basket(member, scenes)
    response = web.post(f"{A}/basket/order", {"label": "My first order"}, follow=True)
    order = Order.unscoped_objects.get(project=project, owner=member.user)
    assert response.redirect_chain[-1][0] == f"{A}/orders/{order.pk}/"
    html = _html(response)
    assert order.label == "My first order" and "My first order" in html
    assert 'id="order-status">PENDING' in html
    assert "Your basket is empty" in _html(web.get(f"{A}/basket/"))
    # The same label again: the service's refusal is shown, no second order.
    fill_basket(member, scenes)
    response = web.post(f"{A}/basket/order", {"label": "My first order"}, follow=True)
    assert any("LABEL_NOT_UNIQUE_FOR_OWNER" in m for m in _messages(response))
    response = web.post(f"{A}/basket/order", {"label": "x" * 51}, follow=True)
    assert any("TOO_MANY_CHARACTERS_IN_LABEL" in m for m in _messages(response))
    assert Order.unscoped_objects.filter(project=project).count() == 1
    # No label: generated like the API does.
    response = web.post(f"{A}/basket/order", {"label": ""}, follow=True)
    assert Order.unscoped_objects.filter(project=project, label__startswith="Order of ").count() == 1


def test_order_without_a_basket_says_so(web):
    response = web.post(f"{A}/basket/order", {}, follow=True)
    assert "You have no basket: add something to it first." in _messages(response)


# --- orders ------------------------------------------------------------------------------

def test_order_history_newest_first_own_orders_only(web, member, project, scenes, run_tasks):
    first = order_of(member, scenes[:1], label="first", run=run_tasks)
    second = order_of(member, scenes[1:], label="second")
    colleague = make_member(project)
    order_of(colleague, make_objects(project, count=1), label="not-mine")
    html = _html(web.get(f"{A}/orders/"))
    assert html.index("second") < html.index("first") and "not-mine" not in html
    assert f'data-order-id="{first.pk}"' in html and f'data-order-id="{second.pk}"' in html
    assert 'value="100"' in html and "DONE" in html and "PENDING" in html
    assert "Export all orders" not in html and "<th>Owner</th>" not in html


def test_admins_see_every_order_with_owner_and_csv_export(project, member, scenes):
    order_of(member, scenes, label="members-order")
    admin = make_member(project, Role.ADMIN)
    web = logged_in(admin)
    html = _html(web.get(f"{A}/orders/"))
    assert "members-order" in html and member.user.email in html and "<th>Owner</th>" in html
    csv_url = re.search(r'id="csv-export" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    response = web.get(csv_url)  # the API endpoint, with the browser session
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    assert body.startswith("ORDER_ID;CREATION_DATE") and member.user.email in body
    # Not for a registered user.
    assert logged_in(member).get(csv_url).status_code == 403


def test_order_history_is_paged_without_n_plus_one(web, member, project, django_assert_max_num_queries):
    from orders import services
    objects = make_objects(project, count=1)
    with project_scope(project):
        for n in range(23):
            fill_basket(member, objects)
            services.order_create(project=project, owner=member.user, label=f"order {n:02d}")
    with django_assert_max_num_queries(10):
        first = _html(web.get(f"{A}/orders/"))
    second = _html(web.get(f"{A}/orders/?page=2"))
    assert first.count("data-order-id=") == 20 and second.count("data-order-id=") == 3
    assert "order 22" in first and "order 00" in second


def test_order_page_shows_files_downloads_and_the_offered_actions(web, member, scenes, run_tasks):
    order = order_of(member, scenes, label="done order", run=run_tasks)
    assert reload(order).status == OrderStatus.DONE
    response = web.get(f"{A}/orders/{order.pk}/")
    html = _html(response)
    # DONE offers restart and delete (links of the transitions table), not pause/resume.
    offered = set(re.findall(r'data-rel="(\w+)">', html))
    assert offered == {"restart", "delete", "extend"}
    hidden = set(re.findall(r'data-rel="(\w+)" hidden>', html))
    assert {"pause", "resume", "retry", "remove"} <= hidden
    assert 'value="100"' in html and "data-events-url=" not in html  # final: no live stream
    files = list(OrderDataFile.unscoped_objects.filter(order_id=order.pk).order_by("id"))
    for f in files:
        assert f'data-file-id="{f.pk}"' in html and f.filename in html
    # The download links are the API's endpoints, used with the browser session.
    file_url = re.search(rf'<a href="([^"]+)">Download</a>', html).group(1)
    response = web.get(file_url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == open(files[0].data_file and _path(files[0]), "rb").read()
    zip_url = re.search(r'id="zip-link" href="([^"]+)"', html).group(1)
    response = web.get(zip_url)
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert b"".join(response.streaming_content)[:2] == b"PK"
    metalink_url = re.search(r'id="metalink-link" href="([^"]+)"', html).group(1)
    response = web.get(metalink_url)
    assert response.status_code == 200 and b"<metalink" in b"".join(response.streaming_content)


def _path(order_file):
    from portal.catalog import storage
    return storage.data_file_path(order_file.data_file)


def test_pause_resume_delete_through_the_services_with_refusals_shown(web, member, scenes):
    order = order_of(member, scenes)  # PENDING (the build is not run)
    page = _html(web.get(f"{A}/orders/{order.pk}/"))
    assert set(re.findall(r'data-rel="(\w+)">', page)) == {"pause", "extend"}
    assert "data-events-url=" in page  # not final: the page listens for progress

    response = web.post(f"{A}/orders/{order.pk}/resume", follow=True)
    assert any("ONLY_PAUSED_ORDER_CAN_BE_RESUMED" in m for m in _messages(response))
    response = web.post(f"{A}/orders/{order.pk}/delete", follow=True)
    assert any("ORDER_MUST_BE_PAUSED_BEFORE_BEING_DELETED" in m for m in _messages(response))
    assert reload(order).status == OrderStatus.PENDING

    response = web.post(f"{A}/orders/{order.pk}/pause", follow=True)
    assert reload(order).status == OrderStatus.PAUSED
    assert set(re.findall(r'data-rel="(\w+)">', _html(response))) == {"resume", "delete", "extend"}
    web.post(f"{A}/orders/{order.pk}/delete")
    assert reload(order).status == OrderStatus.DELETED
    # A DELETED order leaves the user's history (as GET /user/orders) but its page answers.
    assert f'data-order-id="{order.pk}"' not in _html(web.get(f"{A}/orders/"))
    assert web.post(f"{A}/orders/{order.pk}/nonsense").status_code == 404


def test_restart_makes_a_new_order(web, member, project, scenes, run_tasks):
    order = order_of(member, scenes, label="once", run=run_tasks)
    response = web.post(f"{A}/orders/{order.pk}/restart", follow=True)
    new = Order.unscoped_objects.filter(project=project).exclude(pk=order.pk).get()
    assert response.redirect_chain[-1][0] == f"{A}/orders/{new.pk}/"
    assert new.selection == reload(order).selection


def test_order_files_are_paged(web, member, project, run_tasks):
    objects = make_objects(project, count=55, files=(("RAWDATA", 10),))
    order = order_of(member, objects, run=run_tasks)
    first = _html(web.get(f"{A}/orders/{order.pk}/"))
    second = _html(web.get(f"{A}/orders/{order.pk}/?files_page=2"))
    assert first.count("<tr data-file-id=") == 50 and second.count("<tr data-file-id=") == 5
    assert "files_page=2" in first


def test_search_page_queries_do_not_grow_with_results(web, project, django_assert_max_num_queries):
    make_objects(project, count=20, files=(("RAWDATA", 10), ("QUICKLOOK_SD", 10)))
    with django_assert_max_num_queries(8):
        html = _html(web.get(f"{A}/search/?q="))
    assert html.count('<tr data-ip-id="') == 20 and html.count("QUICKLOOK_SD") == 20
