"""The Celery app. Configuration comes from Django settings (CELERY_* names)."""
import os

from celery import Celery

from portal import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.base")
broker.install()  # the embedded broker writes messages atomically

app = Celery("orderly")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from portal import audit  # noqa: E402,F401  (task signals name the acting task)
