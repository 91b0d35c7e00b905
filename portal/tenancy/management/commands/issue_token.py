from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from portal.tenancy.models import User
from portal.tenancy.access import project_access_for
from portal.tenancy.selectors import project_by_slug
from portal.tenancy.services import token_issue


class Command(BaseCommand):
    help = "Issues a bearer token for a member and prints it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("project")
        parser.add_argument("email")
        parser.add_argument("--days", type=int, default=30, help="Lifetime in days (default 30).")
        parser.add_argument("--name", default="cli")

    def handle(self, *args, project: str, email: str, days: int, name: str, **options):
        target = project_by_slug(project)
        if target is None:
            raise CommandError(f"unknown project '{project}'", returncode=2)
        user = User.objects.filter(email=email.strip().lower()).first()
        if user is None:
            raise CommandError(f"unknown user '{email}'", returncode=2)
        if project_access_for(user=user, project=target) is None:
            raise CommandError(f"{email} is not a member of '{project}'", returncode=2)
        if not 1 <= days <= 3650:
            raise CommandError("--days must be between 1 and 3650", returncode=2)
        issued = token_issue(user=user, project=target, name=name, lifetime=timedelta(days=days))
        self.stdout.write(issued.raw_key)
