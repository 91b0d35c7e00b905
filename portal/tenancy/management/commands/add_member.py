from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from portal.tenancy.models import Role
from portal.tenancy.selectors import project_by_slug
from portal.tenancy.services import member_add


class Command(BaseCommand):
    help = "Adds a user to a project with a role, creating the user if needed."

    def add_arguments(self, parser):
        parser.add_argument("project")
        parser.add_argument("email")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--password", default=None)

    def handle(self, *args, project: str, email: str, role: str, password: str | None, **options):
        target = project_by_slug(project)
        if target is None:
            raise CommandError(f"unknown project '{project}'", returncode=2)
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"invalid email '{email}'", returncode=2)
        membership = member_add(project=target, email=email, role=role, password=password)
        self.stdout.write(f"{membership.user.email} is {membership.role} in {target.slug}")
