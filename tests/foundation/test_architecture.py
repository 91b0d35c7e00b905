"""The tree's shape, checked by reading the source with `ast` (docs/architecture.md).

- The domain speaks no HTTP: no module of the apps but their edges (APIs, pages, URLs, admin,
  serializers, CSV responses...) imports DRF, `django.http` or `portal.api`.
- The arrows between apps point one way: portal <- basket <- orders <- deliveries, so no
  import cycle joins modules of different apps; `portal` imports no app (but the root URLconf).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("basket", "orders", "deliveries")
DOMAIN_PACKAGES = ("basket", "orders", "deliveries", "portal/catalog", "portal/tenancy", "portal/webhooks")
# Modules that speak a protocol (HTTP, the admin, templates) and so may import it.
EDGE_MODULES = {"apis", "pages", "urls", "admin", "serializers", "csv", "authentication", "middleware", "apps"}
HTTP_MODULES = ("rest_framework", "django.http", "django.shortcuts", "drf_spectacular", "portal.api")
# What each app may import (besides itself); portal imports no app.
ALLOWED_ARROWS = {
    "portal": set(),
    "basket": {"portal"},
    "orders": {"portal", "basket"},
    "deliveries": {"portal", "basket", "orders"},
}
# The root URLconf includes every app's URLs.
PORTAL_MAY_IMPORT_APPS = {"portal/urls.py"}


def _sources(*packages: str):
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if "migrations" in rel.parts or "management" in rel.parts:
                continue
            yield rel, path


def _imported(path: Path) -> list[tuple[int, str]]:
    """Absolute names of every import of a module, including those inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.append((node.lineno, module))
            names.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return names


def _app_of(module: str) -> str | None:
    top = module.split(".")[0]
    return top if top in APPS or top == "portal" else None


def test_domain_modules_speak_no_http():
    offences = []
    for rel, path in _sources(*DOMAIN_PACKAGES):
        if path.stem in EDGE_MODULES:
            continue
        for line, name in _imported(path):
            if any(name == m or name.startswith(m + ".") for m in HTTP_MODULES):
                offences.append(f"{rel}:{line} imports {name}")
    assert not offences, "the domain imports HTTP:\n" + "\n".join(sorted(set(offences)))


@pytest.mark.parametrize("app", sorted(ALLOWED_ARROWS))
def test_imports_between_apps_point_one_way(app):
    offences = []
    for rel, path in _sources(app):
        if app == "portal" and str(rel) in PORTAL_MAY_IMPORT_APPS:
            continue
        for line, name in _imported(path):
            target = _app_of(name)
            if target is not None and target != app and target not in ALLOWED_ARROWS[app]:
                offences.append(f"{rel}:{line} imports {name}")
    assert not offences, f"{app} may import only {sorted(ALLOWED_ARROWS[app])}:\n" + "\n".join(sorted(set(offences)))


def test_the_checks_see_what_they_guard():
    # The walk finds the modules and the imports it judges (a broken walk would pass vacuously).
    sources = {str(rel) for rel, _ in _sources(*DOMAIN_PACKAGES)}
    assert {"orders/services.py", "orders/transitions.py", "deliveries/selectors.py"} <= sources
    assert (ROOT / "orders/apis.py").exists()
    assert any(name.startswith("rest_framework") for _, name in _imported(ROOT / "orders/apis.py"))
    assert any(name.startswith("portal.errors") for _, name in _imported(ROOT / "orders/transitions.py"))


@pytest.mark.parametrize(("app", "mutator"), [("orders", "orders/transitions.py"),
                                              ("deliveries", "deliveries/transitions.py")])
def test_only_the_state_machine_writes_a_status(app, mutator):
    """One table, one mutator: no `.update(status=...)`, `.status = ...` or `status=` at creation
    outside the app's transitions module."""
    offences = []
    for rel, path in _sources(app):
        if str(rel) == mutator:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("update", "create", "bulk_update") \
                    and any(k.arg == "status" for k in node.keywords):
                offences.append(f"{rel}:{node.lineno} {node.func.attr}(status=...)")
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Attribute) and t.attr == "status"
                                                    for t in node.targets):
                offences.append(f"{rel}:{node.lineno} .status = ...")
    assert not offences, f"only {mutator} changes a status:\n" + "\n".join(offences)
