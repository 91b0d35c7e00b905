import sys

from django.core.management.base import BaseCommand, CommandError

from portal.catalog.manifest import ManifestError
from portal.catalog.progress import ProgressBars
from portal.catalog.services import catalog_load
from portal.tenancy.scope import project_scope
from portal.tenancy.selectors import project_by_slug


class Command(BaseCommand):
    help = ("Loads a catalog manifest (JSON, or CSV by its .csv suffix) into a project: "
            "all or nothing, idempotent, in bulk.")

    def add_arguments(self, parser):
        parser.add_argument("project")
        parser.add_argument("manifest")

    def handle(self, *args, project: str, manifest: str, **options):
        target = project_by_slug(project)
        if target is None:
            raise CommandError(f"unknown project '{project}'", returncode=2)
        # Bars go to the real terminal, only when stdout is one.
        with ProgressBars(sys.stdout, enabled=self.stdout.isatty()) as bars, project_scope(target):
            try:
                result = catalog_load(project=target, manifest=manifest, progress=bars.update)
            except ManifestError as exc:
                raise CommandError(f"bad manifest, nothing loaded: {exc}", returncode=2)
        self.stdout.write(f"Loaded {manifest} into {target.slug}: {result}")
