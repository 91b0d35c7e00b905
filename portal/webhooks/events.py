"""The event types a webhook endpoint may subscribe to (SPEC section 7)."""

ORDER_CREATED = "order.created"
ORDER_STATUS_CHANGED = "order.status_changed"
ORDER_FILES_AVAILABLE = "order.files_available"
ORDER_WAITING_FOR_USER = "order.waiting_for_user"
ORDER_EXPIRING = "order.expiring"
ORDER_EXPIRED = "order.expired"
DELIVERY_DONE = "delivery.done"
DELIVERY_ERROR = "delivery.error"
DOWNLOADORDER_COMPLETED = "downloadorder.completed"
PING = "ping"

EVENT_TYPES = (ORDER_CREATED, ORDER_STATUS_CHANGED, ORDER_FILES_AVAILABLE, ORDER_WAITING_FOR_USER,
               ORDER_EXPIRING, ORDER_EXPIRED, DELIVERY_DONE, DELIVERY_ERROR, DOWNLOADORDER_COMPLETED, PING)
# What an endpoint may subscribe to: `ping` is only ever sent by `POST /{id}/test`.
SUBSCRIBABLE = tuple(t for t in EVENT_TYPES if t != PING)
