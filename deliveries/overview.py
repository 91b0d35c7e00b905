"""The delivery-cache panel of the admin overview (registered in DeliveriesConfig.ready)."""
from __future__ import annotations

from django.db.models import Sum

from portal.overview import Panel

from .models import CACHE_HOLDING_STATUSES, Delivery


def delivery_cache_panel(*, projects) -> Panel:
    used = dict(Delivery.unscoped_objects.filter(project__in=projects, status__in=CACHE_HOLDING_STATUSES)
                .values_list("project_id").annotate(total=Sum("bytes_to_prepare")).order_by())
    rows = [{"project": p, "used": used.get(p.pk, 0) or 0, "capacity": p.delivery_cache_capacity_bytes,
             "percent": round(100 * (used.get(p.pk, 0) or 0) / p.delivery_cache_capacity_bytes)
             if p.delivery_cache_capacity_bytes else 0} for p in projects]
    return Panel(title="Delivery cache", template="admin/overview_cache.html", context={"rows": rows})
