"""Download orders, their targets, their history and the conversion presets of a project."""
from django.conf import settings
from django.db import models

from portal.catalog.models import DataObject
from portal.tenancy.models import TenantModel

from . import codes


class DownloadOrderStatus(models.TextChoices):
    PENDING = codes.PENDING          # created; its delivery waits for a worker
    PROCESSING = codes.PROCESSING    # a worker copies and converts its files
    COMPLETED = codes.COMPLETED      # the zip is ready (some conversions may have failed: additional_info)
    FAILED = codes.FAILED            # nothing could be delivered


class DownloadOrder(TenantModel):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=255, blank=True)
    culture = models.CharField(max_length=20, blank=True)
    download_order_type = models.CharField(max_length=20, default="Standard")
    item_name_resolver = models.CharField(max_length=20, default="filename")
    zip_filename = models.CharField(max_length=255, blank=True)
    # How targets were chosen (`basket` or `entities`) and the dataset they were restricted to.
    selection_pool = models.CharField(max_length=20)
    definition_name = models.CharField(max_length=255, blank=True)
    # The request's `order.global` / `order.individual`, normalised (presets expanded).
    configuration = models.JSONField(default=dict, blank=True)
    has_conversions = models.BooleanField(default=False)
    target_count = models.PositiveIntegerField(default=0)
    # Only deliveries.downloadorders.transitions writes status (its table of allowed moves).
    status = models.CharField(max_length=20, choices=DownloadOrderStatus.choices,
                              default=DownloadOrderStatus.PENDING)
    additional_info = models.TextField(blank=True)
    # The package: a delivery of catalog id `downloadorder-<id>` whose zip is download_location.
    delivery = models.OneToOneField("deliveries.Delivery", on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="download_order")
    idempotency_key = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Last-Modified: every change a reader can see (status, info, download location) moves it.
    modified_at = models.DateTimeField(auto_now_add=True)
    modified_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["project", "owner", "idempotency_key"],
                                               condition=~models.Q(idempotency_key=""),
                                               name="downloadorder_idempotency_key_unique")]
        indexes = [models.Index(fields=["project", "owner", "created_at"], name="downloadorder_owner_created")]

    def __str__(self) -> str:
        return self.name or f"Download order {self.pk}"

    @property
    def catalog_id(self) -> str:
        return f"{codes.CATALOG_PREFIX}{self.pk}"


class DownloadOrderTarget(TenantModel):
    """One entity of a download order, with what is delivered of it (global or individual)."""

    download_order = models.ForeignKey(DownloadOrder, on_delete=models.CASCADE, related_name="targets")
    data_object = models.ForeignKey(DataObject, on_delete=models.CASCADE, related_name="+")
    renditions = models.JSONField(default=list)      # rendition names as asked, e.g. ["RAWDATA"]
    conversions = models.JSONField(default=list)     # lists of normalised steps (presets expanded)
    individual = models.BooleanField(default=False)  # configured by `order.individual`

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["download_order", "data_object"],
                                               name="downloadorder_target_unique")]

    def __str__(self) -> str:
        return f"{self.download_order_id}: {self.data_object_id}"


class DownloadOrderEvent(TenantModel):
    """A status change of a download order: its history, beside orders' OrderEvent and
    deliveries' DeliveryEvent (a download order has its own statuses); written only by
    deliveries.downloadorders.history, which publishes `downloadorder.completed`."""

    download_order = models.ForeignKey(DownloadOrder, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    reason = models.CharField(max_length=500, blank=True)
    # Who (a user, a task or "system"), as orders' and deliveries' histories say it (portal.audit).
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+")
    actor_label = models.CharField(max_length=254, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status}"


class ConversionPreset(TenantModel):
    """A named conversion of a project (e.g. `web`: jpeg at 1024 px), edited in the admin."""

    name = models.CharField(max_length=100)
    description = models.CharField(max_length=255, blank=True)
    steps = models.JSONField(help_text='Ordered steps, e.g. [{"type": "fileExtension", "value": "jpeg"}, '
                                       '{"type": "resize", "value": {"width": 1024}}].')

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="conversion_preset_name_unique")]

    def __str__(self) -> str:
        return self.name
