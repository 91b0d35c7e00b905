from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_slug
from django.core.exceptions import ValidationError

from portal.tenancy.models import Project
from portal.tenancy.services import project_create


class Command(BaseCommand):
    help = "Creates a project (tenant)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--label", default=None)

    def handle(self, *args, slug: str, label: str | None, **options):
        try:
            validate_slug(slug)
        except ValidationError:
            raise CommandError(f"invalid project slug '{slug}': use letters, digits, - and _", returncode=2)
        if len(slug) > 50:
            raise CommandError("project slug is longer than 50 characters", returncode=2)
        if Project.objects.filter(slug=slug).exists():
            raise CommandError(f"project '{slug}' already exists", returncode=2)
        project = project_create(slug=slug, label=label)
        self.stdout.write(f"Created project {project.slug} ({project.label})")
