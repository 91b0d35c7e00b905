"""What people read on the pages for the orders' wire codes (the code itself is shown beside it)."""
from __future__ import annotations

from portal.pages.errors import page_message

from . import codes

ORDER_TEXTS = {
    codes.ORDER_MUST_BE_PENDING_OR_RUNNING: "Only a pending or running order can be paused.",
    codes.ONLY_PAUSED_ORDER_CAN_BE_RESUMED: "Only a paused order can be resumed.",
    codes.ORDER_MUST_BE_PAUSED_BEFORE_BEING_DELETED: "Pause the order before deleting it.",
    codes.ORDER_MUST_NOT_BE_RUNNING: "A running order cannot be removed: pause it first.",
    codes.ORDER_MUST_BE_DONE_WITH_WARNING_OR_FAILED: "Only an order with failed files can be retried.",
    codes.ORDER_MUST_BE_DONE_OR_DONE_WITH_WARNING_OR_FAILED: "Only a finished order can be restarted.",
    codes.ORDER_MUST_NOT_BE_EXPIRED_OR_DELETED: "An expired or deleted order cannot be extended.",
    codes.USER_NOT_ALLOWED_TO_MANAGE_ORDER: "You may not manage this order.",
    codes.TOO_MANY_CHARACTERS_IN_LABEL: "The label is too long (at most 50 characters).",
    codes.LABEL_NOT_UNIQUE_FOR_OWNER: "You already have an order with this label.",
}


def order_error_text(code: str) -> str:
    return page_message(code, ORDER_TEXTS)
