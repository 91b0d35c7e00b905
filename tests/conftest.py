"""Fixtures shared by every test: projects, members, API clients, a live Celery worker."""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from portal.tenancy.models import Project, Role, User
from portal.tenancy.scope import project_scope
from portal.tenancy.services import token_issue

from .factories import MembershipFactory, ProjectFactory, UserFactory


@dataclass
class Member:
    user: User
    project: Project
    client: APIClient  # authenticated with a bearer token, `scope` header set
    token: str


def make_member(project: Project, role: str = Role.REGISTERED_USER, email: str | None = None) -> Member:
    user = UserFactory(**({"email": email} if email else {}))
    MembershipFactory(user=user, project=project, role=role)
    issued = token_issue(user=user, project=project)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.raw_key}", HTTP_SCOPE=project.slug)
    return Member(user=user, project=project, client=client, token=issued.raw_key)


@pytest.fixture
def project(db) -> Project:
    return ProjectFactory(slug="alpha", label="Alpha archive")


@pytest.fixture
def other_project(db) -> Project:
    return ProjectFactory(slug="beta", label="Beta archive")


@pytest.fixture
def two_projects(project, other_project) -> tuple[Project, Project]:
    return project, other_project


@pytest.fixture
def member(project) -> Member:
    return make_member(project)


@pytest.fixture
def admin_member(project) -> Member:
    return make_member(project, Role.ADMIN)


@pytest.fixture
def scoped(project):
    """Activates `project` as the scope for the test body."""
    with project_scope(project):
        yield project


@pytest.fixture
def data_dir(settings):
    """The per-run data dir (settings.test makes a fresh temporary one)."""
    return settings.DATA_DIR


@pytest.fixture(scope="session", autouse=True)
def _remove_test_data_dir():
    yield
    from django.conf import settings

    if "orderly-test-" in str(settings.DATA_DIR) and not os.environ.get("ORDERLY_KEEP_TEST_DATA"):
        shutil.rmtree(settings.DATA_DIR, ignore_errors=True)


@contextmanager
def tasks_inline(django_capture_on_commit_callbacks):
    """Tasks enqueued on commit run at once, in this thread (Celery eager mode)."""
    from portal.celery import app

    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            yield
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = previous


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    """`with run_tasks():` runs the tasks its block enqueues, in order, in this thread.

    For tests of what the tasks do; tests of the worker itself use `celery_live_worker`."""
    return lambda: tasks_inline(django_capture_on_commit_callbacks)


@pytest.fixture
def celery_live_worker(transactional_db):
    """A real Celery worker (threads) consuming from the configured broker (Redis in CI).

    Tasks run in other threads with their own database connections, so tests using it see
    only committed data (hence transactional_db).
    """
    from celery.contrib.testing.worker import start_worker

    from portal.celery import app

    app.control.purge()
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False,
                      shutdown_timeout=30, loglevel="WARNING") as worker:
        yield worker


# --- object storage: a real S3 endpoint (moto in server mode) on 127.0.0.1 -----------------------

@dataclass
class ObjectStore:
    endpoint: str
    bucket: str

    @property
    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}?endpoint_url={self.endpoint}&region=us-east-1"

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def database_url() -> str:
    """The URL of the test database, for processes the test starts (not the configured one)."""
    from django.db import connection

    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_until(predicate, timeout: float, what: str, details=lambda: "") -> None:
    """Polls `predicate` until it is true; AssertionError (with `details()`) after `timeout` s."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}\n{details()}")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 30.0) -> None:
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="session")
def moto_endpoint():
    """An S3-compatible HTTP endpoint (`moto_server`) in its own process, for the whole run."""
    import subprocess
    import sys

    port = free_port()
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(name, value)
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(endpoint)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def object_store(moto_endpoint) -> ObjectStore:
    """A fresh bucket on the S3 endpoint."""
    import uuid

    store = ObjectStore(endpoint=moto_endpoint, bucket=f"orderly-{uuid.uuid4().hex[:12]}")
    store.client.create_bucket(Bucket=store.bucket)
    return store


@pytest.fixture
def s3_storage(settings, object_store) -> ObjectStore:
    """Every storage of the portal on S3 (ONLINE, NEARLINE, caches, keys), in a fresh bucket."""
    settings.ONLINE_STORAGE_URL = object_store.url("online")
    settings.NEARLINE_STORAGE_URL = object_store.url("nearline")
    settings.CACHE_STORAGE_URL = object_store.url("cache")
    settings.DELIVERY_SIGNING_KEY = ""
    settings.DELIVERY_SIGNING_KEY_PEM = ""
    return object_store
