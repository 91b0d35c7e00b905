from django.db import models

from portal.tenancy.models import TenantModel


class DataType(models.TextChoices):
    RAWDATA = "RAWDATA"
    QUICKLOOK_SD = "QUICKLOOK_SD"
    QUICKLOOK_MD = "QUICKLOOK_MD"
    QUICKLOOK_HD = "QUICKLOOK_HD"
    THUMBNAIL = "THUMBNAIL"
    DOCUMENT = "DOCUMENT"
    DESCRIPTION = "DESCRIPTION"


# Types a user may order; RAWDATA when the basket names none.
ORDERABLE_TYPES = (DataType.RAWDATA, DataType.QUICKLOOK_SD, DataType.QUICKLOOK_MD, DataType.QUICKLOOK_HD)
DEFAULT_ORDER_TYPES = (DataType.RAWDATA,)


class StorageTier(models.TextChoices):
    ONLINE = "ONLINE"      # read directly
    NEARLINE = "NEARLINE"  # restored (slowly, may fail) into a cache before it can be read


class Dataset(TenantModel):
    ip_id = models.CharField("ipId", max_length=255)
    label = models.CharField(max_length=255)
    properties = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "ip_id"], name="dataset_ipid_unique")]
        indexes = [models.Index(fields=["project", "label"], name="dataset_project_label")]

    def __str__(self) -> str:
        return self.label


class DataObject(TenantModel):
    ip_id = models.CharField("ipId", max_length=255)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="data_objects")
    label = models.CharField(max_length=255)
    creation_date = models.DateTimeField("creationDate", db_index=True)
    # Searchable `tags:` values, kept as a list.
    tags = models.JSONField(default=list, blank=True)
    # The same tags as `|tag1|tag2|`, so `tags:x` is a portable LIKE (no JSON contains on SQLite).
    tags_index = models.TextField(default="", blank=True, editable=False)
    properties = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "ip_id"], name="dataobject_ipid_unique")]
        indexes = [
            models.Index(fields=["project", "dataset", "creation_date"], name="dataobject_ds_date"),
            models.Index(fields=["project", "label"], name="dataobject_project_label"),
        ]

    def __str__(self) -> str:
        return self.label

    @staticmethod
    def tags_index_for(tags) -> str:
        return "|" + "|".join(str(t) for t in tags or []) + "|" if tags else ""

    def save(self, *args, **kwargs):
        # Derived column: bulk loaders set it themselves (bulk_create skips save()).
        self.tags_index = self.tags_index_for(self.tags)
        super().save(*args, **kwargs)


class DataFile(TenantModel):
    """A stored file of a data object. Size and all checksums are computed once, at load."""

    data_object = models.ForeignKey(DataObject, on_delete=models.CASCADE, related_name="files")
    data_type = models.CharField("dataType", max_length=20, choices=DataType.choices)
    filename = models.CharField(max_length=255)
    mime_type = models.CharField("mimeType", max_length=127, default="application/octet-stream")
    size = models.PositiveBigIntegerField()
    checksum = models.CharField("md5", max_length=32)
    sha256 = models.CharField(max_length=64)
    crc32 = models.PositiveBigIntegerField()
    tier = models.CharField(max_length=10, choices=StorageTier.choices, default=StorageTier.ONLINE)
    # Key of the file within its tier's storage (a relative path for local disk, a key for S3).
    location = models.CharField(max_length=1024)

    class Meta:
        indexes = [
            models.Index(fields=["project", "data_object", "data_type"], name="datafile_obj_type"),
            models.Index(fields=["project", "checksum"], name="datafile_checksum"),
        ]

    def __str__(self) -> str:
        return self.filename
