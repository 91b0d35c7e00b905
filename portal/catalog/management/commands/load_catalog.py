import sys

from django.core.management.base import BaseCommand, CommandError

from portal.catalog.manifest import ManifestError
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
        with _ProgressBars(enabled=self.stdout.isatty()) as bars, project_scope(target):
            try:
                result = catalog_load(project=target, manifest=manifest, progress=bars.update)
            except ManifestError as exc:
                raise CommandError(f"bad manifest, nothing loaded: {exc}", returncode=2)
        self.stdout.write(f"Loaded {manifest} into {target.slug}: {result}")


class _ProgressBars:
    """One tqdm bar per phase, shown only on a terminal (never in logs or pipes)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bars = {}

    def update(self, phase: str, done: int) -> None:
        if not self.enabled:
            return
        if phase not in self.bars:
            from tqdm import tqdm

            self.bars[phase] = tqdm(desc=phase, unit=" " + phase, file=sys.stdout, leave=True)
        self.bars[phase].update(done)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for bar in self.bars.values():
            bar.close()
