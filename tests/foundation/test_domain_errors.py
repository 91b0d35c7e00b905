"""Domain exceptions carry no HTTP; the API edge maps them to statuses and bodies in one table."""
import pytest
from rest_framework.test import APIRequestFactory

from portal import errors as domain
from portal.api.errors import exception_handler


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (domain.NotFound(), 404),
        (domain.NotAllowed("USER_NOT_ALLOWED_TO_MANAGE_ORDER"), 403),
        (domain.NotAuthenticated(), 401),
        (domain.Refused("X_REFUSED"), 409),
        (domain.Invalid("BAD", "bad input"), 400),
        (domain.Gone(), 410),
        (domain.LimitExceeded(), 409),
    ],
)
def test_each_kind_of_domain_error_has_one_status(exc, status):
    request = APIRequestFactory().get("/api/v1/delivery/x")
    response = exception_handler(exc, {"request": request})
    assert response.status_code == status
    assert response.data["code"] == exc.code
    assert response.content_type == "application/problem+json"


def test_regards_endpoints_answer_messages_with_the_code():
    request = APIRequestFactory().get("/api/v1/rs-order/user/orders/1")
    response = exception_handler(domain.Invalid("SOME_CODE", "explained"), {"request": request})
    assert response.status_code == 400
    assert response.data == {"messages": ["SOME_CODE"]}
