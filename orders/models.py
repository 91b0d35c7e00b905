from django.conf import settings
from django.db import models

from portal.catalog.models import Dataset, DataFile, StorageTier
from portal.tenancy.models import TenantModel


class OrderStatus(models.TextChoices):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    DONE = "DONE"
    DONE_WITH_WARNING = "DONE_WITH_WARNING"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    DELETED = "DELETED"


# Every file in a final state: the order is done (its files may still be downloaded).
FINISHED_STATUSES = frozenset({OrderStatus.DONE, OrderStatus.DONE_WITH_WARNING, OrderStatus.FAILED})
# Nothing will change any more on its own (a live view of the order may stop).
FINAL_STATUSES = FINISHED_STATUSES | {OrderStatus.EXPIRED, OrderStatus.DELETED}


class Order(TenantModel):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    label = models.CharField(max_length=50)
    creation_date = models.DateTimeField()
    expiration_date = models.DateTimeField()
    # Only orders.transitions assigns status (see STYLE.md, "State machines").
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING)
    status_date = models.DateTimeField()
    percent_completed = models.PositiveSmallIntegerField(default=0)
    files_in_error_count = models.PositiveIntegerField(default=0)
    available_files_count = models.PositiveIntegerField(default=0)
    waiting_for_user = models.BooleanField(default=False)
    frontend_url = models.URLField(max_length=2000, blank=True)
    message = models.TextField(blank=True)
    # What was ordered (the basket's dated selections), so `restart` can order it again.
    selection = models.JSONField(default=list, blank=True)
    files_count = models.PositiveIntegerField(default=0)
    files_size = models.PositiveBigIntegerField(default=0)
    # Set once the background build resolved the files and made the sub-orders.
    built_at = models.DateTimeField(null=True, blank=True)
    # `Idempotency-Key` of the creation request: a retry returns this order.
    idempotency_key = models.CharField(max_length=255, blank=True)
    # Mails already sent (claimed with a compare-and-set, so a retried task does not resend).
    created_mail_at = models.DateTimeField(null=True, blank=True)
    ready_mail_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    # When the owner was warned that the order expires within a day (reset by `extend`).
    expiry_warned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "owner", "label"], name="order_label_unique_per_owner"),
            models.UniqueConstraint(fields=["project", "owner", "idempotency_key"],
                                    condition=~models.Q(idempotency_key=""), name="order_idempotency_key"),
        ]
        indexes = [
            models.Index(fields=["project", "owner", "-creation_date"], name="order_owner_created"),
            models.Index(fields=["project", "status", "expiration_date"], name="order_status_expiry"),
            models.Index(fields=["expiration_date"], name="order_expiry_sweep"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.label}"


class DatasetTask(TenantModel):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="dataset_tasks")
    dataset = models.ForeignKey(Dataset, on_delete=models.SET_NULL, null=True, related_name="+")
    dataset_label = models.CharField(max_length=255)
    dataset_ip_id = models.CharField(max_length=255)
    objects_count = models.PositiveIntegerField(default=0)
    files_count = models.PositiveIntegerField(default=0)
    files_size = models.PositiveBigIntegerField(default=0)
    # Position (OrderDataFile.position) of the task's first file; None for tasks built
    # before positions existed (their file lists page with OFFSET).
    first_position = models.PositiveIntegerField(null=True, blank=True)
    # The frozen selection of this dataset (queries, dates, file filters).
    selection = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        # A build retried while the first run is still going fails here instead of doubling files.
        constraints = [models.UniqueConstraint(fields=["order", "dataset_ip_id"], name="datasettask_once_per_order")]


class SubOrderState(models.TextChoices):
    WAITING = "WAITING"    # not started: over the user's limit of sub-orders in flight
    STAGING = "STAGING"    # its files are being made available
    STAGED = "STAGED"      # every file in a final state, some not downloaded yet
    DONE = "DONE"          # downloaded (or nothing left to download): frees a slot


class SubOrder(TenantModel):
    """A slice of a dataset task (at most the project's max files / max bytes)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="sub_orders")
    dataset_task = models.ForeignKey(DatasetTask, on_delete=models.CASCADE, related_name="sub_orders")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=10, choices=SubOrderState.choices, default=SubOrderState.WAITING)
    files_count = models.PositiveIntegerField(default=0)
    files_size = models.PositiveBigIntegerField(default=0)
    # Counters of its files' states, recounted whenever its files change, so an order's
    # progress sums a few sub-order rows instead of scanning all its files.
    pending_count = models.PositiveIntegerField(default=0)
    available_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    final_bytes = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Set when a worker claims the staging; a beat job re-dispatches ones stuck too long.
    claimed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["project", "owner", "state"], name="suborder_owner_state"),
            models.Index(fields=["state", "claimed_at"], name="suborder_stuck_sweep"),
        ]


class FileState(models.TextChoices):
    PENDING = "PENDING"
    AVAILABLE = "AVAILABLE"
    DOWNLOADED = "DOWNLOADED"
    DOWNLOAD_ERROR = "DOWNLOAD_ERROR"      # was available, download failed; retryable
    PROCESSING_ERROR = "PROCESSING_ERROR"
    ERROR = "ERROR"                        # staging failed


FINAL_FILE_STATES = (FileState.AVAILABLE, FileState.DOWNLOADED, FileState.DOWNLOAD_ERROR,
                     FileState.PROCESSING_ERROR, FileState.ERROR)
ERROR_FILE_STATES = (FileState.DOWNLOAD_ERROR, FileState.PROCESSING_ERROR, FileState.ERROR)


class OrderDataFile(TenantModel):
    """One file of an order, with a copy of the catalog facts it was ordered with."""

    # The biggest table (hundreds of thousands of rows per order, copied in one statement):
    # - no single-column index where a composite one below starts with the column (fewer
    #   writes per row on insert and on every state change);
    # - no database constraint on project, order or sub-order: each is a deferred check per
    #   row at commit (the order's alone cost the build about 14 us per file, a third of it,
    #   in bench/order_bench.py). The rows are written only by the build, inside the
    #   transaction that then locks the order (a removed order rolls the build back), and
    #   removed with their order under its lock; Django still cascades deletes through them.
    project = models.ForeignKey("tenancy.Project", on_delete=models.CASCADE, related_name="+", db_index=False,
                                db_constraint=False)
    # Indexed by (order, position) below.
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="files", db_index=False,
                              db_constraint=False)
    sub_order = models.ForeignKey(SubOrder, on_delete=models.CASCADE, related_name="files", db_index=False,
                                  db_constraint=False)
    # A soft link to the catalog: the row keeps its own copy of the file's facts, so no
    # database constraint (no per-row check on the bulk insert; SET_NULL is done by Django).
    data_file = models.ForeignKey(DataFile, on_delete=models.SET_NULL, null=True, related_name="+",
                                  db_constraint=False)
    product_id = models.CharField(max_length=255, help_text="ipId of the data object.")
    data_type = models.CharField(max_length=20)
    filename = models.CharField(max_length=255)
    mime_type = models.CharField(max_length=127)
    size = models.PositiveBigIntegerField()
    checksum = models.CharField(max_length=32)
    sha256 = models.CharField(max_length=64)
    crc32 = models.PositiveBigIntegerField()
    tier = models.CharField(max_length=10, choices=StorageTier.choices)
    location = models.CharField(max_length=1024)
    state = models.CharField(max_length=20, choices=FileState.choices, default=FileState.PENDING)
    state_date = models.DateTimeField(auto_now=True)
    error_reason = models.TextField(blank=True)
    # Where a NEARLINE file was restored in the order cache (relative to it).
    cache_path = models.CharField(max_length=1024, blank=True)
    # 1-based rank in the order, in id order, set by the build (files are never removed one
    # by one): page k of a million-file list is a range of positions, not an OFFSET scan.
    position = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        # No index names `state` (not as a key, not in a predicate): staging (PENDING ->
        # AVAILABLE of a sub-order's ONLINE files) and a zip's marking (-> DOWNLOADED) then
        # change no indexed column and are HOT updates on PostgreSQL: one new tuple on the same
        # page, no entry in any index (about 5x cheaper than writing one in each of five). The
        # room on the page is the table's fillfactor (30, migration 0009). A sub-order's files
        # (at most the project's suborder_max_files) are found by (sub_order, position), an
        # order's by (order, position); state filters are checked on those rows, and the
        # sub-orders' per-state counters answer "any file pending/in error/available?".
        indexes = [
            models.Index(fields=["sub_order", "position"], name="orderfile_suborder_position"),
            models.Index(fields=["order", "position"], name="orderfile_order_position"),
        ]


class OrderEventKind(models.TextChoices):
    CREATED = "created"
    STATUS_CHANGED = "status_changed"
    FILES_AVAILABLE = "files_available"
    WAITING_FOR_USER = "waiting_for_user"
    EXTENDED = "extended"
    EXPIRING = "expiring"


class OrderEvent(TenantModel):
    """What happened to an order, when, and who (a person) or what (a task) did it.

    Written only by orders.history, in the transaction of the change it records; webhooks are
    published from it."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    kind = models.CharField(max_length=20, choices=OrderEventKind.choices)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+")
    actor_label = models.CharField(max_length=254, help_text="Email of the person, or the task that acted.")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["project", "order", "id"], name="orderevent_order")]

    def __str__(self) -> str:
        return f"{self.kind} {self.from_status}->{self.to_status}"
