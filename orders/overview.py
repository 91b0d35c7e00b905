"""The orders panels of the admin overview (registered in OrdersConfig.ready): orders per day
and bytes delivered over the last 30 days, orders by status, and the staging backlog."""
from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from portal.catalog.models import StorageTier
from portal.charts import daily_bar_chart
from portal.overview import Panel

from .models import FileState, Order, OrderDataFile, OrderStatus, SubOrder, SubOrderState

DAYS = 30


def _daily(rows, days, key: str) -> list[float]:
    by_day = {row["day"]: row[key] or 0 for row in rows}
    return [by_day.get(day, 0) for day in days]


def orders_activity_panel(*, projects) -> Panel:
    # Explicitly filtered by the admin's projects (the overview spans projects: no one scope).
    today = timezone.now().date()
    days = [today - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
    since = timezone.now() - timedelta(days=DAYS)
    created = (Order.unscoped_objects.filter(project__in=projects, creation_date__gte=since)
               .annotate(day=TruncDate("creation_date")).values("day").annotate(n=Count("id")).order_by())
    delivered = (OrderDataFile.unscoped_objects.filter(project__in=projects, state=FileState.DOWNLOADED,
                                                      state_date__gte=since)
                 .annotate(day=TruncDate("state_date")).values("day").annotate(b=Sum("size")).order_by())
    orders, sent = _daily(created, days, "n"), _daily(delivered, days, "b")
    return Panel(title=f"Last {DAYS} days", template="admin/overview_activity.html", context={
        "wide": True,
        "orders_chart": daily_bar_chart(title="Orders created per day", days=days, values=orders,
                                        chart_id="orders-chart", format_value=lambda v: f"{v:.0f}"),
        "bytes_chart": daily_bar_chart(title="Bytes delivered per day", days=days, values=sent, colour="#1d7a3a",
                                       chart_id="bytes-chart", format_value=lambda v: filesizeformat(int(v))),
        "orders_total": int(sum(orders)), "bytes_total": int(sum(sent)),
    })


def orders_state_panel(*, projects) -> Panel:
    counts = dict(Order.unscoped_objects.filter(project__in=projects).values_list("status")
                  .annotate(n=Count("id")).order_by())
    by_status = [(status.value, counts.get(status.value, 0)) for status in OrderStatus if counts.get(status.value)]
    waiting = SubOrder.unscoped_objects.filter(project__in=projects, state=SubOrderState.WAITING).count()
    restoring = OrderDataFile.unscoped_objects.filter(
        project__in=projects, tier=StorageTier.NEARLINE, state=FileState.PENDING,
        sub_order__state=SubOrderState.STAGING).count()
    waiting_for_users = Order.unscoped_objects.filter(project__in=projects, waiting_for_user=True).count()
    return Panel(title="Orders and staging", template="admin/overview_orders.html", context={
        "by_status": by_status, "suborders_waiting": waiting, "nearline_restoring": restoring,
        "waiting_for_users": waiting_for_users,
    })
