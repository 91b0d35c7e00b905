"""Secrets stay out of logs (issue 11, item 10): the access log of the server `manage.py serve`
runs redacts token query parameters and credential headers; the embedded default's mails
(order links carry the orderToken) are files in the data dir, not lines in a log."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from portal.logs import REDACTED, RedactSecretsFilter, redact
from portal.management.commands.serve import web_command
from tests.conftest import free_port, wait_for_http

ROOT = Path(__file__).resolve().parents[2]
SECRET = "tok3n-S3CRET-value"


def _embedded_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "EMAIL_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(ORDERLY_DATA_DIR=str(tmp_path / "data"), DJANGO_SETTINGS_MODULE="portal.settings.base")
    return env


SECRET_URLS = [
    f"/healthz?orderToken={SECRET}",
    f"/api/v1/rs-order/user/orders/metalink/download?scope=demo&orderToken={SECRET}",
    f"/no/such/page?x=1&ORDERTOKEN={SECRET}&y=2",
    f"/healthz?access_token={SECRET}",
    f"/healthz?token={SECRET}&password={SECRET}",
    # REGARDS download links carry the bearer token itself as `token` (QueryTokenAuthentication).
    f"/api/v1/rs-catalog/downloads/URN:AIP:DATA:p:1:V1/files/0123abcd?token={SECRET}",
]


def test_the_served_access_log_redacts_tokens(tmp_path):
    port = free_port()
    command = web_command(host="127.0.0.1", port=port, workers=1, threads=4)
    server = subprocess.Popen(command, cwd=ROOT, env=_embedded_env(tmp_path), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        for url in SECRET_URLS:
            request = urllib.request.Request(f"http://127.0.0.1:{port}{url}", headers={
                "Authorization": f"Bearer {SECRET}", "Referer": f"http://x/?orderToken={SECRET}"})
            try:
                urllib.request.urlopen(request, timeout=10).read()
            except urllib.error.HTTPError as exc:
                exc.read()
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert "/api/v1/rs-order/user/orders/metalink/download?scope=demo&orderToken=[redacted]" in output
    assert "/files/0123abcd?token=[redacted]" in output
    assert output.count(REDACTED) >= len(SECRET_URLS)
    assert SECRET not in output


def test_embedded_default_mails_are_files_not_log_lines(tmp_path):
    script = textwrap.dedent(f"""
        import django
        django.setup()
        from django.conf import settings
        from django.core.mail import send_mail
        send_mail("Your order", "Metalink: http://x/metalink/download?orderToken={SECRET}", None, ["a@b.org"])
        print("backend", settings.EMAIL_BACKEND)
    """)
    env = _embedded_env(tmp_path)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    mails = list((tmp_path / "data" / "mail").iterdir())
    assert len(mails) == 1 and SECRET in mails[0].read_text()


@pytest.mark.parametrize("text, expected", [
    ("GET /x?orderToken=abc HTTP/1.1", f"GET /x?orderToken={REDACTED} HTTP/1.1"),
    ("/x?a=1&ordertoken=abc&b=2", f"/x?a=1&ordertoken={REDACTED}&b=2"),
    ("/x?scope=p;access_token=abc", f"/x?scope=p;access_token={REDACTED}"),
    ("orderToken=abc", f"orderToken={REDACTED}"),
    ("/api/v1/rs-catalog/downloads/U/files/c?token=ordly_abc&x=1", f"/api/v1/rs-catalog/downloads/U/files/c?token={REDACTED}&x=1"),
    ("/x?Token=abc", f"/x?Token={REDACTED}"),
    ("/x?myorderToken=abc", "/x?myorderToken=abc"),  # another parameter
    ("/x?scope=demo", "/x?scope=demo"),
])
def test_redact(text, expected):
    assert redact(text) == expected


def test_portal_log_records_are_redacted():
    record = logging.LogRecord("django.server", logging.INFO, __file__, 1, '"GET %s HTTP/1.1" 200',
                               (f"/x?orderToken={SECRET}",), None)
    assert RedactSecretsFilter().filter(record) is True
    assert SECRET not in record.getMessage() and REDACTED in record.getMessage()
