"""Builds the `demo` project. The catalog part is filled in by the catalog feature."""
from django.core.management.base import BaseCommand
from django.db import transaction

from portal.tenancy.models import Project, Role
from portal.tenancy.services import member_add, project_create

DEMO_SLUG = "demo"
DEMO_ADMIN = ("admin@demo.orderly", "demo-admin-pass")
DEMO_USER = ("user@demo.orderly", "demo-user-pass")


class Command(BaseCommand):
    help = "Builds the demo project with an ADMIN and a REGISTERED_USER (credentials printed)."

    def add_arguments(self, parser):
        parser.add_argument("--if-absent", action="store_true", help="Do nothing if the demo project exists.")

    def handle(self, *args, if_absent: bool, **options):
        if if_absent and Project.objects.filter(slug=DEMO_SLUG).exists():
            self.stdout.write("Demo project already present.")
            return
        with transaction.atomic():
            project = Project.objects.filter(slug=DEMO_SLUG).first() or project_create(
                slug=DEMO_SLUG, label="Demo archive")
            member_add(project=project, email=DEMO_ADMIN[0], role=Role.ADMIN, password=DEMO_ADMIN[1])
            member_add(project=project, email=DEMO_USER[0], role=Role.REGISTERED_USER, password=DEMO_USER[1])
        self.stdout.write(f"Demo project '{DEMO_SLUG}' ready.")
        self.stdout.write(f"  ADMIN:           {DEMO_ADMIN[0]} / {DEMO_ADMIN[1]}")
        self.stdout.write(f"  REGISTERED_USER: {DEMO_USER[0]} / {DEMO_USER[1]}")
