"""A delivery's catalogId has one canonical form (issue 11, item 9): `order-<id>` in ASCII
digits without leading zeros; every other spelling of an order id is 404 DELIVERY.notFound
and prepares nothing."""
import pytest

from deliveries.models import Delivery
from deliveries.selectors import order_id_of
from tests.deliveries.conftest import STATUS_URL, prepare, status_of
from tests.orders.conftest import make_objects, order_of

pytestmark = pytest.mark.django_db

# Each spelling is built from the order id at test time.
SPELLINGS = {
    "leading zero": lambda n: f"order-0{n}",
    "many leading zeros": lambda n: f"order-0000{n}",
    "arabic-indic digits": lambda n: "order-" + str(n).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),
    "devanagari digits": lambda n: "order-" + str(n).translate(str.maketrans("0123456789", "०१२३४५६७८९")),
    "fullwidth digits": lambda n: "order-" + str(n).translate(str.maketrans("0123456789", "０１２３４５６７８９")),
    "superscript digits": lambda n: "order-" + str(n).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")),
    "plus sign": lambda n: f"order-+{n}",
    "underscore": lambda n: f"order-{n}_0"[:-2] + f"_{n}" if n > 9 else f"order-0_{n}",
    "trailing space": lambda n: f"order-{n} ",
    "upper case prefix": lambda n: f"ORDER-{n}",
}


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_non_canonical_order_catalog_ids_name_nothing(member, run_tasks, spelling):
    order = order_of(member, make_objects(member.project, count=1), label="canonical", run=run_tasks)
    canonical = f"order-{order.pk}"
    assert prepare(member, canonical, run_tasks).status_code == 200
    other = SPELLINGS[spelling](order.pk)
    assert other != canonical

    prepared = prepare(member, other, run_tasks)
    assert prepared.status_code == 404, (other, prepared.content)
    assert prepared.json()["code"] == "DELIVERY.notFound"
    assert status_of(member, other).status_code == 404
    assert member.client.delete(f"{STATUS_URL}/{other}").status_code == 404
    assert list(Delivery.unscoped_objects.values_list("catalog_id", flat=True)) == [canonical]
    assert status_of(member, canonical).json()["status"] == "done"


@pytest.mark.parametrize("catalog_id, expected", [
    ("order-1", 1), ("order-20", 20), ("order-0", None), ("order-01", None), ("order-٢", None),
    ("order-²", None), ("order-", None), ("order-1" + "0" * 18, None), ("order- 1", None)])
def test_order_id_of_reads_only_the_canonical_form(catalog_id, expected):
    assert order_id_of(catalog_id) == expected
