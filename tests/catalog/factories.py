"""Catalog factories. `DataFileFactory` writes REAL bytes into the tier's storage directory.

    f = DataFileFactory(project=project)                       # ONLINE, new object and dataset
    f = DataFileFactory(data_object=obj, tier="NEARLINE", content=b"...")
    obj = DataObjectFactory(dataset=ds, tags=["x"], properties={"instrument": "OLI"})

Bytes live at `storage.data_file_path(f)` (= <tier dir>/<project slug>/<sha256[:2]>/<sha256>);
size, crc32, md5 `checksum` and sha256 are computed from `content`.
"""
import uuid
from datetime import datetime, timedelta, timezone

import factory

from portal.catalog import storage
from portal.catalog.models import DataFile, DataObject, DataType, Dataset, StorageTier
from tests.factories import ProjectFactory

URN_NAMESPACE = uuid.UUID("6b1f3d52-6c7e-4d0e-9a55-7f1c8e0f2a10")


def urn(kind: str, project_slug: str, key: str) -> str:
    return f"URN:AIP:{kind}:{project_slug}:{uuid.uuid5(URN_NAMESPACE, f'{project_slug}:{key}')}:V1"


class _TenantFactory(factory.django.DjangoModelFactory):
    """Creates through `unscoped_objects` (factories run outside any project scope)."""

    class Meta:
        abstract = True

    @classmethod
    def _get_manager(cls, model_class):
        return model_class.unscoped_objects

    @classmethod
    def _generate(cls, strategy, params):
        # A given parent row (dataset, data object) decides the project.
        parent_field = {DataObject: "dataset", DataFile: "data_object"}.get(cls._meta.model)
        parent = params.get(parent_field) if parent_field else None
        if parent is not None and "project" not in params:
            params["project"] = parent.project
        return super()._generate(strategy, params)


class DatasetFactory(_TenantFactory):
    class Meta:
        model = Dataset

    project = factory.SubFactory(ProjectFactory)
    label = factory.Sequence(lambda n: f"Dataset {n}")
    ip_id = factory.LazyAttributeSequence(lambda o, n: urn("DATASET", o.project.slug, f"ds-{n}"))
    properties = factory.LazyFunction(dict)


class DataObjectFactory(_TenantFactory):
    class Meta:
        model = DataObject

    project = factory.SubFactory(ProjectFactory)
    dataset = factory.SubFactory(DatasetFactory, project=factory.SelfAttribute("..project"))
    label = factory.Sequence(lambda n: f"Object {n}")
    ip_id = factory.LazyAttributeSequence(lambda o, n: urn("DATA", o.project.slug, f"obj-{n}"))
    # In the past, so a basket selection made "now" includes it.
    creation_date = factory.Sequence(lambda n: datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=n))
    tags = factory.LazyFunction(list)
    properties = factory.LazyFunction(dict)


class DataFileFactory(_TenantFactory):
    class Meta:
        model = DataFile

    project = factory.SubFactory(ProjectFactory)
    data_object = factory.SubFactory(DataObjectFactory, project=factory.SelfAttribute("..project"))
    data_type = DataType.RAWDATA
    filename = factory.Sequence(lambda n: f"file_{n:05d}.dat")
    mime_type = "application/octet-stream"
    tier = StorageTier.ONLINE
    content = factory.LazyAttributeSequence(lambda o, n: (f"bytes of {o.filename} #{n}\n" * 8).encode())
    digests = factory.LazyAttribute(lambda o: storage.bytes_digests(o.content))
    size = factory.LazyAttribute(lambda o: o.digests.size)
    crc32 = factory.LazyAttribute(lambda o: o.digests.crc32)
    checksum = factory.LazyAttribute(lambda o: o.digests.md5)
    sha256 = factory.LazyAttribute(lambda o: o.digests.sha256)
    location = factory.LazyAttribute(lambda o: storage.location_for(project_slug=o.project.slug, sha256=o.digests.sha256))

    @classmethod
    def _create(cls, model_class, *args, content: bytes = b"", digests=None, **kwargs):
        # `content` and `digests` are inputs, not model fields: write the bytes, then the row.
        storage.store_file(tier=kwargs["tier"], location=kwargs["location"], source=content)
        return super()._create(model_class, *args, **kwargs)

    @classmethod
    def _build(cls, model_class, *args, content: bytes = b"", digests=None, **kwargs):
        return super()._build(model_class, *args, **kwargs)
