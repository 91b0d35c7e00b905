"""A task that exists only for the worker tests: it writes a row, so its run is visible."""
from celery import shared_task

from portal.tenancy.models import Project


@shared_task(acks_late=True)
def create_marker_project(slug: str) -> None:
    Project.objects.get_or_create(slug=slug, defaults={"label": "made by the worker"})
