from django.conf import settings
from django.db import models

from portal.catalog.models import Dataset
from portal.tenancy.models import TenantModel


class Basket(TenantModel):
    """One per user and project."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        constraints = [models.UniqueConstraint(fields=["project", "owner"], name="basket_one_per_owner")]

    def __str__(self) -> str:
        return f"Basket #{self.pk}"


class CountsMixin(models.Model):
    """Counts of the selection's objects and of its files of the ordered types (kept by services)."""

    objects_count = models.PositiveIntegerField(default=0)
    files_count = models.PositiveIntegerField(default=0)
    files_size = models.PositiveBigIntegerField(default=0)
    quota = models.PositiveIntegerField(default=0, help_text="RAWDATA files stored in the portal.")

    class Meta:
        abstract = True


class BasketDatasetSelection(TenantModel, CountsMixin):
    basket = models.ForeignKey(Basket, on_delete=models.CASCADE, related_name="dataset_selections")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    # File filters: the data types to order (RAWDATA when empty) and a filename regex.
    file_types = models.JSONField(default=list, blank=True)
    filename_pattern = models.CharField(max_length=500, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["basket", "dataset"], name="basket_dataset_unique")]
        indexes = [models.Index(fields=["project", "basket"], name="basket_dssel_project_basket")]

    def __str__(self) -> str:
        return f"Dataset selection #{self.pk}"


class BasketItemSelection(TenantModel, CountsMixin):
    """One dated addition to a dataset selection: its query is frozen at `date`."""

    dataset_selection = models.ForeignKey(
        BasketDatasetSelection, on_delete=models.CASCADE, related_name="item_selections"
    )
    date = models.DateTimeField()
    open_search_request = models.TextField(blank=True)
    # Explicit objects: included only these (no query) or excluded from the query.
    included_ip_ids = models.JSONField(default=list, blank=True)
    excluded_ip_ids = models.JSONField(default=list, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["date", "id"]
        # The date identifies an item selection in the API (DELETE .../{itemsSelectionDate}).
        constraints = [
            models.UniqueConstraint(fields=["dataset_selection", "date"], name="basket_item_date_unique")
        ]
        indexes = [models.Index(fields=["project", "dataset_selection"], name="basket_item_project_dssel")]

    def __str__(self) -> str:
        return f"Items selection of {self.date:%Y-%m-%dT%H:%M:%S.%fZ}"
