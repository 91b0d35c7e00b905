"""Download orders test helpers: catalog objects with real image and data files, the API calls."""
from __future__ import annotations

import io
import time

from PIL import Image

from deliveries.downloadorders.models import DownloadOrder
from portal.catalog.models import DataType
from tests.catalog.factories import DataFileFactory, DataObjectFactory, DatasetFactory
from tests.deliveries.conftest import _own_delivery_cache  # noqa: F401 - a delivery cache per test

URL = "/api/downloadorders"


def png_bytes(width: int, height: int, color=(200, 30, 30, 255)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def make_object(project, *, dataset=None, label=None, files=()):
    """A data object with real files: each (data type, filename, bytes, mime type)."""
    dataset = dataset or DatasetFactory(project=project)
    obj = DataObjectFactory(dataset=dataset, **({"label": label} if label else {}))
    for data_type, filename, content, mime_type in files:
        DataFileFactory(data_object=obj, data_type=data_type, filename=filename, content=content,
                        mime_type=mime_type)
    return obj


def raw(filename: str, content: bytes) -> tuple:
    return (DataType.RAWDATA, filename, content, "application/octet-stream")


def body(entities, *, global_=None, individual=None, **extra) -> dict:
    order = {"global": global_ or {}, "individual": individual or {}}
    order.update(extra.pop("order", {}))
    return {"target_selection": {"selectionPool": "entities", "entities": list(entities)}, "order": order,
            **extra}


def create(member, payload, **headers):
    return member.client.post(URL, payload, format="json", **headers)


def row(order_id: int) -> DownloadOrder:
    return DownloadOrder.unscoped_objects.get(pk=order_id)


def wait_final(member, order_id: int, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = member.client.get(f"{URL}/{order_id}").json()
        if data["status"] in ("Completed", "Failed"):
            return data
        time.sleep(0.1)
    raise AssertionError(f"download order still {data['status']}")
