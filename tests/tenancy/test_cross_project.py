"""Walks every API URL pattern and checks that project B's members never reach project A.

For each endpoint and each method its view offers, a member of B (an ADMIN, the strongest
role) calls it on A's objects, with B as scope and with A as scope. Reads must answer
401/403/404 wherever a path names an object; nothing may be 2xx on A's objects or 5xx;
A's marker may never appear in a response; and A's rows must be unchanged afterwards.
Path parameters are filled by providers registered in tests/<app>/cross_project.py.
"""
from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from portal.tenancy.models import Role, TenantModel
from tests.cross_project import PROVIDERS, PUBLIC_URL_NAMES, HarnessContext
from tests.conftest import make_member

TESTS_DIR = Path(__file__).resolve().parents[1]
for provider_module in sorted(TESTS_DIR.glob("*/cross_project.py")):
    importlib.import_module(f"tests.{provider_module.parent.name}.cross_project")

MARKER = "SECRET-OF-PROJECT-A"
READ_METHODS = {"get", "head"}
WRITE_METHODS = {"post", "put", "patch", "delete"}


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def api_endpoints():
    found = []
    for route, pattern in _walk(get_resolver().url_patterns):
        if not route.lstrip("^").startswith("api/") or pattern.name in PUBLIC_URL_NAMES:
            continue
        view = getattr(pattern.callback, "cls", None) or getattr(pattern.callback, "view_class", None)
        methods = sorted(m for m in READ_METHODS | WRITE_METHODS if view is not None and hasattr(view, m))
        params = sorted(pattern.pattern.converters) if hasattr(pattern.pattern, "converters") else []
        if not params and hasattr(pattern.pattern, "regex"):
            params = sorted(pattern.pattern.regex.groupindex)
        found.append(pytest.param(pattern.name, params, methods, id=pattern.name or route))
    return found


def tenant_snapshot(project) -> str:
    """A digest of every tenant-owned row of `project`."""
    digest = hashlib.sha256()
    for model in sorted(apps.get_models(), key=lambda m: m._meta.label):
        if issubclass(model, TenantModel):
            rows = list(model.unscoped_objects.filter(project=project).order_by("pk").values())
            digest.update(model._meta.label.encode())
            digest.update(json.dumps(rows, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _body(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def test_every_api_endpoint_is_walked():
    names = [p.values[0] for p in api_endpoints()]
    assert "me" in names and "token-list" in names
    assert all(name for name in names), "every API URL needs a name="


@pytest.mark.parametrize("url_name, params, methods", api_endpoints())
def test_members_of_another_project_never_reach_project_a(two_projects, url_name, params, methods):
    alpha, beta = two_projects
    ctx = HarnessContext(project=alpha, owner=make_member(alpha), admin=make_member(alpha, Role.ADMIN),
                         marker=MARKER)
    intruder = make_member(beta, Role.ADMIN)
    missing = [p for p in params if p not in PROVIDERS]
    assert not missing, f"{url_name}: no cross-project provider for {missing} (see tests/cross_project.py)"
    kwargs = {name: PROVIDERS[name](ctx) for name in params}
    url = reverse(url_name, kwargs=kwargs)
    before = tenant_snapshot(alpha)

    for scope in ("beta", "alpha"):
        for method in methods:
            call = getattr(intruder.client, method)
            sep = "&" if "?" in url else "?"
            target = f"{url}{sep}scope={scope}"
            response = call(target, {}, format="json") if method in WRITE_METHODS else call(target)
            body = _body(response)
            where = f"{method.upper()} {url} as a member of beta with scope={scope}"
            assert response.status_code < 500, f"{where}: {response.status_code}"
            assert MARKER.encode() not in body, f"{where} leaked project A's data"
            if params or scope == "alpha":
                assert not 200 <= response.status_code < 300, f"{where}: {response.status_code} {body[:300]!r}"
                if method in READ_METHODS:
                    assert response.status_code in (401, 403, 404), f"{where}: {response.status_code}"

    assert tenant_snapshot(alpha) == before, f"{url_name}: project A's rows changed"
