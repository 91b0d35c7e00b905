"""A small catalog for basket tests: two datasets, objects tagged `red`/`blue`, real files."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from portal.catalog.models import DataType
from tests.catalog.factories import DataFileFactory, DataObjectFactory, DatasetFactory

BASKET_URL = "/api/v1/rs-order/order/basket"
SELECTION_URL = f"{BASKET_URL}/selection"


def dataset_url(selection_id) -> str:
    return f"{BASKET_URL}/dataset/{selection_id}"


def make_object(dataset, *, tags=("red",), files=((DataType.RAWDATA, 100),), **kwargs):
    """A data object with files of the given (type, size) and real bytes on disk."""
    obj = DataObjectFactory(dataset=dataset, tags=list(tags), **kwargs)
    for index, (data_type, size) in enumerate(files):
        DataFileFactory(data_object=obj, data_type=data_type, content=bytes([65 + index]) * size,
                        filename=f"{obj.label.replace(' ', '_')}_{index}.{data_type.lower()}")
    return obj


@dataclass
class Catalog:
    optical: object
    radar: object
    red_optical: list = field(default_factory=list)  # 3 objects: RAWDATA 100 + QUICKLOOK_SD 10 each
    blue_optical: list = field(default_factory=list)  # 1 object: RAWDATA 1000
    red_radar: list = field(default_factory=list)  # 2 objects: RAWDATA 200
    thumbnail_only: object = None  # tagged `grey`: no orderable file


@pytest.fixture
def catalog(project) -> Catalog:
    optical = DatasetFactory(project=project, label="Optical scenes")
    radar = DatasetFactory(project=project, label="Radar scenes")
    cat = Catalog(optical=optical, radar=radar)
    cat.red_optical = [
        make_object(optical, files=((DataType.RAWDATA, 100), (DataType.QUICKLOOK_SD, 10))) for _ in range(3)
    ]
    cat.blue_optical = [make_object(optical, tags=("blue",), files=((DataType.RAWDATA, 1000),))]
    cat.red_radar = [make_object(radar, files=((DataType.RAWDATA, 200),)) for _ in range(2)]
    cat.thumbnail_only = make_object(optical, tags=("grey",), files=((DataType.THUMBNAIL, 5),))
    return cat


def selections_by_label(body: dict) -> dict:
    return {s["datasetLabel"]: s for s in body["content"]["datasetSelections"]}
