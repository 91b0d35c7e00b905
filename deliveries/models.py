from django.conf import settings
from django.db import models

from portal.tenancy.models import Project, TenantModel

from .codes import ARCHIVE_ITEM_KEY


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"          # asked for, waiting for a worker
    START = "start"              # claimed by a worker (cache space being reserved)
    IN_PROGRESS = "inProgress"   # files being copied and hashed
    DONE = "done"
    ERROR = "error"
    DELETE = "delete"            # freed (by a user, an admin, eviction or expiry)


# A worker owns these; preparing again is refused while one holds the delivery.
ACTIVE_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.START, DeliveryStatus.IN_PROGRESS)
# These hold (or are about to hold) bytes in the delivery cache.
CACHE_HOLDING_STATUSES = (DeliveryStatus.START, DeliveryStatus.IN_PROGRESS, DeliveryStatus.DONE)


class Delivery(TenantModel):
    """One prepared package per catalog id (`order-<id>`, a data object or a dataset URN)."""

    catalog_id = models.CharField("catalogId", max_length=255)
    # `order`, `dataobject` or `dataset`: what catalog_id names.
    target_kind = models.CharField(max_length=20)
    # Optional filter given at preparation (a data type, for catalog URNs).
    item_type = models.CharField("itemType", max_length=40, blank=True)
    # Only deliveries.transitions.delivery_transition writes status (the table of allowed moves).
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    size = models.PositiveBigIntegerField(default=0, help_text="Size of the zip archive of the package.")
    bytes_to_prepare = models.PositiveBigIntegerField(default=0, help_text="Files plus archive: the cache footprint.")
    bytes_prepared = models.PositiveBigIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=60, blank=True)
    error_message = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    # Bumped each time the delivery is prepared again; a task carries the generation it was for.
    generation = models.PositiveIntegerField(default=1)
    # The worker holding the delivery; every write of a worker is conditional on its token.
    claim_token = models.CharField(max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["project", "catalog_id"], name="delivery_catalog_unique")]
        indexes = [
            models.Index(fields=["project", "status", "done_at"], name="delivery_project_status"),
            models.Index(fields=["status", "expires_at"], name="delivery_expiry_sweep"),
        ]

    def __str__(self) -> str:
        return f"{self.catalog_id} ({self.status})"


class DeliveryArtifact(TenantModel):
    """One downloadable piece of a done delivery: the zip archive, or one file of the package."""

    # A package of a million files writes a million rows: no single-column index on either
    # foreign key, the composite ones below serve their lookups (each index costs every row).
    # No foreign-key constraint in the database either (db_constraint=False): checking two per
    # row at commit was about 6 of the ~14 µs a row costs the database. Nothing is lost: rows
    # are only written by preparation in the transaction that ends with its claimed delivery
    # done (a lost claim rolls them back), and every deletion of a delivery or a project goes
    # through the ORM, whose collector deletes the artifacts (on_delete=CASCADE is Django's; the
    # constraints never cascaded). Tested in tests/deliveries/test_artifact_cascade.py.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False,
                                db_constraint=False)
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="artifacts", db_index=False,
                                 db_constraint=False)
    item_key = models.CharField("itemKey", max_length=255)
    artifact_type = models.CharField("artifactType", max_length=40)
    # Relative to the delivery's cache directory.
    path = models.CharField(max_length=1024)
    # Set when the bytes are a range of the package at `path` (the archive, read and written
    # once): the offset of the first byte in it; null when `path` holds the artifact alone.
    archive_offset = models.PositiveBigIntegerField(null=True, blank=True)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    signature = models.CharField(max_length=128, help_text="Base64 Ed25519 signature of the raw SHA-256 digest.")
    is_executable = models.BooleanField("isExecutable", default=False)
    arguments = models.CharField(max_length=255, blank=True)
    # The archive's; a file's is {} (`shown_meta_data` makes it of the columns below: a million
    # rows a package need not store and parse ~200 bytes of JSON each). Older rows keep theirs.
    meta_data = models.JSONField("metaData", default=dict, blank=True)
    # For files: the catalog facts used for `source=remote` URLs.
    product_id = models.CharField(max_length=255, blank=True)
    md5 = models.CharField(max_length=32, blank=True)
    tier = models.CharField(max_length=10, blank=True)
    mime_type = models.CharField(max_length=127, default="application/octet-stream")

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["delivery", "item_key"], name="artifact_item_key_unique")]
        indexes = [models.Index(fields=["project", "delivery"], name="artifact_project_delivery")]

    def __str__(self) -> str:
        return self.item_key

    @property
    def shown_meta_data(self) -> dict:
        """The artifact's metaData: stored for the archive, made of a file's own columns."""
        if self.meta_data or self.item_key == ARCHIVE_ITEM_KEY:
            return self.meta_data
        return {"filename": self.item_key, "productId": self.product_id, "dataType": self.artifact_type,
                "mimeType": self.mime_type, "md5": self.md5, "tier": self.tier}


class DeliveryRequestKey(TenantModel):
    """An `Idempotency-Key` of a prepare request: a retry answers the first request's delivery."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user", "key"], name="delivery_request_key_unique")]


class DeliveryEvent(TenantModel):
    """A status change of a delivery (who or which task, when, from, to, why).

    Written only by deliveries.history, in the transaction of the change; the `done` and
    `error` ones are published to webhooks."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    reason = models.CharField(max_length=500, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+")
    actor_label = models.CharField(max_length=254)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["project", "delivery", "id"], name="deliveryevent_delivery")]

    def __str__(self) -> str:
        return f"{self.from_status}->{self.to_status}"


# Download orders live in their own package; their models belong to this app.
from .downloadorders.models import (  # noqa: E402,F401
    ConversionPreset, DownloadOrder, DownloadOrderEvent, DownloadOrderStatus, DownloadOrderTarget)
