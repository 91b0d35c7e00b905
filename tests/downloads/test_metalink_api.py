"""Order metalinks (owner and public token) and the sub-order progression driven by downloads."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from lxml import etree
from rest_framework.test import APIClient

from portal.files.metalink import METALINK3_NS, METALINK4_NS
from orders.models import FileState, Order, OrderStatus, SubOrder
from orders.tokens import order_from_token, order_token_for
from portal.catalog import storage

from .conftest import API, body_of, make_objects, order_files, order_of, reload, states
from .test_metalink import validator


def test_owner_metalink3_by_default_validates_and_lists_every_file(member, staged_order):
    response = member.client.get(f"{API}/user/orders/{staged_order.pk}/metalink/download")
    assert response.status_code == 200 and response["Content-Type"] == "application/metalink+xml"
    assert re.fullmatch(rf"attachment;filename=order_{staged_order.pk}_\d{{8}}-\d{{6}}\.metalink",
                        response["Content-Disposition"])
    doc = etree.fromstring(body_of(response))
    assert validator(3).validate(doc), validator(3).error_log
    ns = {"m": METALINK3_NS}
    files = order_files(staged_order)
    entries = doc.findall("m:files/m:file", ns)
    assert [e.get("name") for e in entries] == [f.filename for f in files]
    for entry, f in zip(entries, files):
        assert entry.findtext("m:size", namespaces=ns) == str(f.size)
        assert entry.findtext("m:verification/m:hash[@type='md5']", namespaces=ns) == f.checksum
        assert entry.findtext("m:verification/m:hash[@type='sha256']", namespaces=ns) == f.sha256
        url = urlsplit(entry.findtext("m:resources/m:url", namespaces=ns))
        query = parse_qs(url.query)
        assert query["scope"] == ["alpha"]
        # Tokens are timestamped signatures: compare what they stand for, not their text.
        assert order_from_token(project=staged_order.project, token=query["orderToken"][0]).pk == staged_order.pk
        # The public URL downloads the file with no login at all.
        got = APIClient().get(f"{url.path}?{url.query}")
        assert got.status_code == 200 and body_of(got) == storage.data_file_path(f).read_bytes()
    assert set(states(staged_order).values()) == {FileState.DOWNLOADED}


def test_metalink4_on_accept_and_the_public_token_endpoint(member, staged_order):
    token = order_token_for(staged_order)
    anonymous = APIClient()
    response = anonymous.get(f"{API}/user/orders/metalink/download", {"orderToken": token, "scope": "alpha"},
                             HTTP_ACCEPT="application/metalink4+xml")
    assert response.status_code == 200 and response["Content-Type"] == "application/metalink4+xml"
    doc = etree.fromstring(body_of(response))
    assert validator(4).validate(doc), validator(4).error_log
    ns = {"m": METALINK4_NS}
    f = order_files(staged_order)[0]
    first = doc.find("m:file", ns)
    assert first.findtext("m:hash[@type='sha-256']", namespaces=ns) == f.sha256
    assert first.findtext("m:size", namespaces=ns) == str(f.size)
    default = anonymous.get(f"{API}/user/orders/metalink/download", {"orderToken": token, "scope": "alpha"})
    assert default["Content-Type"] == "application/metalink+xml"
    assert anonymous.get(f"{API}/user/orders/metalink/download",
                         {"orderToken": "forged", "scope": "alpha"}).status_code == 401


def test_metalink_is_404_for_pending_failed_deleted_and_expired_orders(member, staged_order):
    url = f"{API}/user/orders/{staged_order.pk}/metalink/download"
    for status in (OrderStatus.PENDING, OrderStatus.FAILED, OrderStatus.DELETED, OrderStatus.EXPIRED):
        Order.unscoped_objects.filter(pk=staged_order.pk).update(status=status)
        assert member.client.get(url).status_code == 404, status
    token = order_token_for(staged_order)
    assert APIClient().get(f"{API}/user/orders/metalink/download",
                           {"orderToken": token, "scope": "alpha"}).status_code == 404


def _sub_states(order) -> list[str]:
    return list(SubOrder.unscoped_objects.filter(order_id=order.pk).order_by("id").values_list("state", flat=True))


def test_three_sub_orders_with_a_limit_of_two_progress_only_as_the_user_downloads(member, project, run_tasks):
    # Given one file per sub-order and at most 2 sub-orders in flight per user
    project.suborder_max_files, project.user_max_suborders = 1, 2
    project.save()
    order = reload(order_of(member, make_objects(project, count=3), run=run_tasks))
    assert _sub_states(order) == ["STAGED", "STAGED", "WAITING"]
    assert order.waiting_for_user is True and order.status == OrderStatus.RUNNING
    available = f"{API}/user/orders/{order.pk}/files/available"
    assert member.client.get(available).status_code == 206

    # When nothing is downloaded, nothing moves (staging again changes nothing)
    with run_tasks():
        pass
    assert _sub_states(order) == ["STAGED", "STAGED", "WAITING"]

    # When the user downloads the zip of what is ready, the third sub-order starts
    with run_tasks():
        zipped = member.client.get(f"{API}/user/orders/{order.pk}/download")
        assert zipped.status_code == 200
        body_of(zipped)
    assert _sub_states(order) == ["DONE", "DONE", "STAGED"]
    order = reload(order)
    assert order.status == OrderStatus.DONE and order.waiting_for_user is False
    assert member.client.get(available).status_code == 200

    # And the last file, downloaded alone, completes the last sub-order
    last = [f for f in order_files(order) if f.state == FileState.AVAILABLE]
    assert len(last) == 1
    with run_tasks():
        body_of(member.client.get(f"{API}/orders/files/{last[0].pk}"))
    assert _sub_states(order) == ["DONE", "DONE", "DONE"]
