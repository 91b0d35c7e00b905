"""Builds the `demo` project: an ADMIN, a REGISTERED_USER and a browsable catalog."""
import sys
import tempfile
import time
from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import transaction

from portal.catalog.demo import write_demo_manifest
from portal.catalog.progress import ProgressBars
from portal.catalog.services import catalog_load
from portal.tenancy.models import Project, Role
from portal.tenancy.scope import project_scope
from portal.tenancy.services import member_add, project_create

DEMO_SLUG = "demo"
DEMO_ADMIN = ("admin@demo.orderly", "demo-admin-pass")
DEMO_USER = ("user@demo.orderly", "demo-user-pass")


class Command(BaseCommand):
    help = ("Builds the demo project with an ADMIN and a REGISTERED_USER (credentials printed), "
            "3 datasets, thousands of objects and real files of both tiers. Safe to run again.")

    def add_arguments(self, parser):
        parser.add_argument("--if-absent", action="store_true", help="Do nothing if the demo project exists.")

    def handle(self, *args, if_absent: bool, **options):
        if if_absent and Project.objects.filter(slug=DEMO_SLUG).exists():
            self.stdout.write("Demo project already present.")
            return
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="orderly-demo-") as folder:
            manifest = write_demo_manifest(Path(folder))
            # One transaction: an interrupted build leaves no half demo for --if-absent to skip.
            with transaction.atomic():
                project = Project.objects.filter(slug=DEMO_SLUG).first() or project_create(
                    slug=DEMO_SLUG, label="Demo archive")
                member_add(project=project, email=DEMO_ADMIN[0], role=Role.ADMIN, password=DEMO_ADMIN[1])
                member_add(project=project, email=DEMO_USER[0], role=Role.REGISTERED_USER, password=DEMO_USER[1])
                with ProgressBars(sys.stdout, enabled=self.stdout.isatty()) as bars, project_scope(project):
                    result = catalog_load(project=project, manifest=manifest, progress=bars.update)
        self.stdout.write(f"Demo project '{DEMO_SLUG}' ready in {time.monotonic() - started:.1f} s ({result}).")
        self.stdout.write(f"  ADMIN:           {DEMO_ADMIN[0]} / {DEMO_ADMIN[1]}")
        self.stdout.write(f"  REGISTERED_USER: {DEMO_USER[0]} / {DEMO_USER[1]}")
