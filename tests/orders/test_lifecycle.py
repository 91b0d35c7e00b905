"""The state machine, its refusals and links, and the lifecycle endpoints."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from orders import build, codes, progress
from orders.models import Order, OrderDataFile, OrderStatus, SubOrder
from orders.transitions import ALLOWED_FROM, REFUSAL_CODE, Action, order_links
from portal.catalog.models import StorageTier
from portal.tenancy.scope import project_scope
from tests.conftest import make_member

from .conftest import ORDERS_URL, file_states, make_objects, order_of, reload, sub_states

pytestmark = pytest.mark.django_db
S = OrderStatus


def _force_status(order, status):
    # Test set-up only: production code changes status through orders.transitions alone.
    Order.unscoped_objects.filter(pk=order.pk).update(status=status)


# --- the table -----------------------------------------------------------------------

ACTION_URLS = {
    Action.PAUSE: ("put", ORDERS_URL + "/pause/{id}"),
    Action.RESUME: ("put", ORDERS_URL + "/resume/{id}"),
    Action.DELETE: ("delete", ORDERS_URL + "/{id}"),
    Action.REMOVE: ("delete", ORDERS_URL + "/remove/{id}"),
    Action.RETRY: ("put", ORDERS_URL + "/{id}/retry"),
    Action.RESTART: ("post", ORDERS_URL + "/{id}/restart"),
}


@pytest.mark.parametrize("action, code", [
    (Action.PAUSE, "ORDER_MUST_BE_PENDING_OR_RUNNING"),
    (Action.RESUME, "ONLY_PAUSED_ORDER_CAN_BE_RESUMED"),
    (Action.DELETE, "ORDER_MUST_BE_PAUSED_BEFORE_BEING_DELETED"),
    (Action.REMOVE, "ORDER_MUST_NOT_BE_RUNNING"),
    (Action.RETRY, "ORDER_MUST_BE_DONE_WITH_WARNING_OR_FAILED"),
    (Action.RESTART, "ORDER_MUST_BE_DONE_OR_DONE_WITH_WARNING_OR_FAILED"),
])
def test_every_refused_status_answers_401_with_the_code(member, run_tasks, action, code):
    assert REFUSAL_CODE[action] == code
    order = order_of(member, make_objects(member.project, count=1), run=run_tasks)
    method, url = ACTION_URLS[action]
    for status in S.values:
        if status in ALLOWED_FROM[action]:
            continue
        _force_status(order, status)
        response = getattr(member.client, method)(url.format(id=order.pk), format="json")
        assert response.status_code == 401, (action, status)
        assert response.json() == {"messages": [code]}
        assert reload(order).status == status  # nothing changed


def test_the_table_matches_spec():
    assert ALLOWED_FROM[Action.PAUSE] == {S.PENDING, S.RUNNING}
    assert ALLOWED_FROM[Action.RESUME] == {S.PAUSED}
    assert ALLOWED_FROM[Action.REMOVE] == set(S.values) - {S.RUNNING}
    assert ALLOWED_FROM[Action.RETRY] == {S.DONE_WITH_WARNING, S.FAILED}
    assert ALLOWED_FROM[Action.RESTART] == {S.DONE, S.DONE_WITH_WARNING, S.FAILED}
    assert S.RUNNING not in ALLOWED_FROM[Action.DELETE] and S.PAUSED in ALLOWED_FROM[Action.DELETE]


@pytest.mark.parametrize("status, available, is_admin, expected", [
    (S.RUNNING, 1, False, ["pause", "extend", "download"]),
    (S.RUNNING, 0, False, ["pause", "extend"]),
    (S.PENDING, 0, False, ["pause", "extend"]),
    (S.PAUSED, 2, False, ["resume", "delete", "extend", "download"]),
    (S.DONE, 2, False, ["delete", "restart", "extend", "download"]),
    (S.DONE_WITH_WARNING, 1, False, ["delete", "restart", "retry", "extend", "download"]),
    (S.FAILED, 0, False, ["delete", "restart", "retry", "extend"]),
    (S.DELETED, 0, True, ["remove"]),
    (S.DELETED, 0, False, []),
    (S.EXPIRED, 3, True, []),
])
def test_links_follow_the_table(status, available, is_admin, expected):
    order = Order(pk=7, status=status, available_files_count=available)
    links = order_links(order, is_admin=is_admin)
    assert [link["rel"] for link in links] == ["self", "list", *expected]
    assert links[0]["href"].endswith("/api/v1/rs-order/user/orders/7")
    assert links[1]["href"].endswith("/api/v1/rs-order/user/orders")


def test_only_the_state_machine_assigns_order_status():
    """Nothing but orders/transitions.py writes Order.status (STYLE.md, "State machines")."""
    root = Path(__file__).resolve().parents[2]
    offenders = []
    pattern = re.compile(r"(\b(order|self)\.status\s*=[^=])|(\.(update|create|update_or_create)\([^)]*\bstatus\s*=)")
    for path in (root / "orders").rglob("*.py"):
        if path.name == "transitions.py" or "migrations" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and "status__" not in line:
                offenders.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert offenders == []


# --- access --------------------------------------------------------------------------

def test_another_user_gets_403_and_an_unknown_order_404(member, project, run_tasks):
    order = order_of(member, make_objects(project, count=1), run=run_tasks)
    stranger = make_member(project)
    for method, url in [("get", ORDERS_URL + "/{id}")] + list(ACTION_URLS.values()):
        response = getattr(stranger.client, method)(url.format(id=order.pk), format="json")
        assert response.status_code == 403, url
        assert response.json() == {"messages": [codes.USER_NOT_ALLOWED_TO_MANAGE_ORDER]}
        assert getattr(member.client, method)(url.format(id=987654), format="json").status_code == 404
    assert reload(order).status == S.DONE


def test_an_admin_manages_any_order_of_the_project(member, admin_member, run_tasks):
    order = order_of(member, make_objects(member.project, count=1))
    assert admin_member.client.get(f"{ORDERS_URL}/{order.pk}").status_code == 200
    response = admin_member.client.put(f"{ORDERS_URL}/pause/{order.pk}")
    assert response.status_code == 200 and response.json()["content"]["status"] == "PAUSED"


# --- each action -------------------------------------------------------------------------

def test_pause_and_resume(member, run_tasks):
    order = order_of(member, make_objects(member.project, count=2))
    paused = member.client.put(f"{ORDERS_URL}/pause/{order.pk}")
    assert paused.status_code == 200 and paused.json()["content"]["status"] == "PAUSED"
    # the build finishing while paused leaves it paused
    with project_scope(member.project):
        build.order_build(project=member.project, order_id=order.pk)
    assert reload(order).status == S.PAUSED and sub_states(order) == ["WAITING"]
    with run_tasks():
        resumed = member.client.put(f"{ORDERS_URL}/resume/{order.pk}")
    assert resumed.status_code == 200
    assert reload(order).status == S.DONE


def test_resume_before_the_build_goes_back_to_pending(member, run_tasks):
    order = order_of(member, make_objects(member.project, count=2))
    member.client.put(f"{ORDERS_URL}/pause/{order.pk}")
    with run_tasks():
        response = member.client.put(f"{ORDERS_URL}/resume/{order.pk}")
    assert response.status_code == 200
    # the resumed order was built again in the background
    assert reload(order).status == S.DONE


def test_delete_keeps_the_row_and_frees_staged_files(member, run_tasks):
    order = order_of(member, make_objects(member.project, count=2, tier=StorageTier.NEARLINE), run=run_tasks)
    cache_dir = Path(settings.ORDER_CACHE_DIR) / member.project.slug / str(order.pk)
    assert len(list(cache_dir.iterdir())) == 2
    with run_tasks():
        response = member.client.delete(f"{ORDERS_URL}/{order.pk}")
    assert response.status_code == 200 and response.json()["content"]["status"] == "DELETED"
    assert not cache_dir.exists()
    assert set(sub_states(order)) == {"DONE"}
    # DELETED orders are not listed for their owner
    assert member.client.get(ORDERS_URL).json()["metadata"]["totalElements"] == 0


def test_remove_deletes_everything_and_pauses_a_pending_order_first(member, run_tasks):
    pending = order_of(member, make_objects(member.project, count=2, label="a"))
    with run_tasks():
        response = member.client.delete(f"{ORDERS_URL}/remove/{pending.pk}")
    assert response.status_code == 200
    assert not Order.unscoped_objects.filter(pk=pending.pk).exists()
    assert not OrderDataFile.unscoped_objects.filter(order_id=pending.pk).exists()

    done = order_of(member, make_objects(member.project, count=2, label="b", tier=StorageTier.NEARLINE),
                    run=run_tasks)
    with run_tasks():
        assert member.client.delete(f"{ORDERS_URL}/remove/{done.pk}").status_code == 200
    assert not (Path(settings.ORDER_CACHE_DIR) / member.project.slug / str(done.pk)).exists()
    assert not SubOrder.unscoped_objects.filter(order_id=done.pk).exists()


def test_retry_stages_failed_files_again(member, run_tasks, settings):
    settings.NEARLINE_RESTORE_FAILURE_RATE = 1.0
    order = order_of(member, make_objects(member.project, count=2, tier=StorageTier.NEARLINE), run=run_tasks)
    assert reload(order).status == S.FAILED
    # the tape is back
    settings.NEARLINE_RESTORE_FAILURE_RATE = 0.0
    with run_tasks():
        response = member.client.put(f"{ORDERS_URL}/{order.pk}/retry")
    assert response.status_code == 200
    order = reload(order)
    assert order.status == S.DONE and file_states(order) == {"AVAILABLE": 2}
    assert order.files_in_error_count == 0 and order.percent_completed == 100


def test_retry_covers_download_errors(member, run_tasks):
    order = order_of(member, make_objects(member.project, count=2), run=run_tasks)
    failed_id = OrderDataFile.unscoped_objects.filter(order=order).values_list("id", flat=True).first()
    with project_scope(member.project):
        progress.order_files_mark_download_failed(project=member.project, order=order,
                                                  file_ids_with_reasons=[(failed_id, "broken pipe")])
    assert reload(order).status == S.DONE_WITH_WARNING
    with run_tasks():
        assert member.client.put(f"{ORDERS_URL}/{order.pk}/retry").status_code == 200
    assert file_states(order) == {"AVAILABLE": 2} and reload(order).status == S.DONE


def test_restart_makes_a_new_order_with_the_same_selection(member, run_tasks):
    order = order_of(member, make_objects(member.project, count=3), run=run_tasks)
    with run_tasks():
        response = member.client.post(f"{ORDERS_URL}/{order.pk}/restart", {"label": "again"}, format="json")
    assert response.status_code == 201
    new = reload(Order(pk=response.json()["content"]["id"]))
    assert new.pk != order.pk and new.label == "again" and new.selection == order.selection
    assert new.status == S.DONE and new.files_count == 3
    assert reload(order).status == S.DONE
