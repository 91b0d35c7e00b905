"""The admin console's own pages answer anonymous visitors (issue 11, item 2)."""
import pytest
from django.test import Client


@pytest.mark.parametrize("path", ["/admin/login/", "/admin/login/?next=/admin/", "/admin/",
                                  "/admin/tenancy/project/", "/admin/orders/order/"])
def test_admin_pages_answer_an_anonymous_visitor_without_error(db, path):
    response = Client().get(path)
    assert response.status_code in (200, 302)
    if path.startswith("/admin/login/"):
        assert response.status_code == 200 and b'name="password"' in response.content
    else:
        assert response["Location"].startswith("/admin/login/")


def test_admin_login_page_for_a_logged_in_non_staff_user(member):
    client = Client()
    client.force_login(member.user)
    response = client.get("/admin/login/")
    assert response.status_code == 200
