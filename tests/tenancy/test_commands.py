import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.tenancy.models import ApiToken, Membership, Project, User


def _fails_with_code_2(*args):
    with pytest.raises(CommandError) as error:
        call_command(*args)
    assert error.value.returncode == 2
    assert "\n" not in str(error.value)
    return str(error.value)


def test_create_project_add_member_issue_token(db, capsys):
    call_command("create_project", "gamma", "--label", "Gamma archive")
    assert Project.objects.get(slug="gamma").label == "Gamma archive"
    call_command("add_member", "gamma", "Ann@Example.org", "--role", "ADMIN", "--password", "s3cret-pass")
    user = User.objects.get(email="ann@example.org")
    assert user.check_password("s3cret-pass")
    assert Membership.objects.get(user=user).role == "ADMIN"
    assert user.is_staff and not user.is_superuser  # the console, scoped to their projects
    capsys.readouterr()
    call_command("issue_token", "gamma", "ann@example.org")
    raw = capsys.readouterr().out.strip()
    token = ApiToken.objects.get(user=user)
    assert token.key_hash == ApiToken.hash_key(raw)


def test_bad_arguments_exit_2_and_change_nothing(db):
    call_command("create_project", "gamma")
    before = (Project.objects.count(), User.objects.count(), Membership.objects.count(), ApiToken.objects.count())
    assert "already exists" in _fails_with_code_2("create_project", "gamma")
    assert "invalid project slug" in _fails_with_code_2("create_project", "bad slug!")
    assert "unknown project" in _fails_with_code_2("add_member", "nope", "a@b.org", "--role", "ADMIN")
    assert "invalid email" in _fails_with_code_2("add_member", "gamma", "not-an-email", "--role", "ADMIN")
    assert "unknown user" in _fails_with_code_2("issue_token", "gamma", "ghost@example.org")
    User.objects.create_user(email="outsider@example.org", password="x")
    assert "not a member" in _fails_with_code_2("issue_token", "gamma", "outsider@example.org")
    after = (Project.objects.count(), User.objects.count() - 1, Membership.objects.count(), ApiToken.objects.count())
    assert before == after


def test_bad_role_is_a_usage_error_with_exit_2(db):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "manage.py", "add_member", "x", "a@b.org", "--role", "KING"],
                            capture_output=True, text=True, env={**__import__("os").environ,
                                                                 "DJANGO_SETTINGS_MODULE": "portal.settings.test"})
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
