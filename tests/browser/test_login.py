import pytest

from tests.conftest import make_member

pytestmark = pytest.mark.browser


def test_login_shows_the_users_projects_only(transactional_db, page, live_server, login, two_projects):
    alpha, beta = two_projects
    member = make_member(alpha, email="reader@example.org")
    login(member.user.email)
    assert page.locator("h1").inner_text() == "Your projects"
    links = page.locator("main ul li a")
    assert links.all_inner_texts() == ["Alpha archive"]
    assert page.get_attribute("main ul li a", "href") == "/projects/alpha/"


def test_wrong_password_shows_an_error(transactional_db, page, live_server, login, project):
    member = make_member(project, email="reader@example.org")
    login(member.user.email, "not-the-password")
    assert "did not match" in page.locator(".error").inner_text()
