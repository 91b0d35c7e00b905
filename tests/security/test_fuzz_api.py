"""Schema fuzzing of the whole API against a live server (issue 11, item 12).

Every operation of /api/schema/ is called with generated parameters and bodies (schemathesis
on hypothesis) as an ADMIN member of project A, with A's token and scope: no answer may be a
5xx, and every answer must conform to the schema (documented status code, content type and
body). A second pass calls every operation that names an object, on project A's objects, as
another project's ADMIN: nothing may be 2xx. Examples are bounded so the test takes a minute
or two on two cores (FUZZ_EXAMPLES raises it for a deeper run).
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

from portal.tenancy.models import Role
from tests.conftest import make_member
from tests.cross_project import PROVIDERS, HarnessContext

TESTS_DIR = Path(__file__).resolve().parents[1]
for provider_module in sorted(TESTS_DIR.glob("*/cross_project.py")):
    importlib.import_module(f"tests.{provider_module.parent.name}.cross_project")

MARKER = "SECRET-OF-PROJECT-A"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

@pytest.fixture
def fuzz_world(transactional_db, settings, live_server):
    """Project A with one of everything (the cross-project providers make it) and B's ADMIN."""
    from portal.tenancy.models import Project

    settings.ORDER_EVENTS_MAX_SECONDS = 0.5  # an events stream ends at once
    settings.ORDER_EVENTS_POLL_SECONDS = 0.1
    alpha = Project.objects.create(slug="alpha", label="Alpha archive")
    beta = Project.objects.create(slug="beta", label="Beta archive")
    ctx = HarnessContext(project=alpha, owner=make_member(alpha), admin=make_member(alpha, Role.ADMIN),
                         marker=MARKER)
    ids = {name: PROVIDERS[name](ctx) for name in sorted(PROVIDERS)}
    intruder = make_member(beta, Role.ADMIN)
    return {"alpha": alpha, "admin": ctx.admin, "owner": ctx.owner, "ids": ids, "intruder": intruder,
            "url": live_server.url}


@pytest.fixture
def api_schema(fuzz_world):
    raw = requests.get(f"{fuzz_world['url']}/api/schema/?format=json", timeout=30).json()
    return schemathesis.openapi.from_dict(raw)


@pytest.fixture
def session():
    with requests.Session() as http:
        yield http


def _each_operation(schema, examples: int, call) -> None:
    """Runs `call(case)` on `examples` generated cases of every operation (no shrinking: a
    failure is reported as found) and fails naming every operation that failed."""
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @hypothesis_settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                             phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):
            call(case)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported together below
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
    assert not failures, f"{len(failures)} operation(s) failed:\n" + "\n\n".join(failures)


def test_every_operation_answers_within_its_schema_and_never_5xx(api_schema, fuzz_world, session):
    member = {"Authorization": f"Bearer {fuzz_world['admin'].token}", "scope": "alpha"}

    def call(case):
        headers = {} if case.operation.path.endswith("/oauth/token") else member
        case.call_and_validate(base_url=fuzz_world["url"], session=session, headers=headers, checks=CHECKS,
                               timeout=30)

    _each_operation(api_schema, EXAMPLES, call)


def test_another_projects_admin_gets_nothing_of_project_a(api_schema, fuzz_world, session):
    ids, intruder = fuzz_world["ids"], fuzz_world["intruder"]

    def call(case):
        if not case.path_parameters:
            return
        missing = [name for name in case.path_parameters if name not in ids]
        assert not missing, f"no cross-project provider for {missing}"
        case.path_parameters = {name: ids[name] for name in case.path_parameters}
        for scope in ("beta", "alpha"):
            response = case.call(base_url=fuzz_world["url"], session=session, timeout=30,
                                 headers={"Authorization": f"Bearer {intruder.token}", "scope": scope})
            where = f"as B's ADMIN with scope={scope}"
            assert response.status_code < 500, f"{where}: {response.status_code}"
            assert not 200 <= response.status_code < 300, f"{where}: {response.status_code} {response.text[:200]}"
            assert MARKER not in response.text, f"{where}: leaked project A's data"

    _each_operation(api_schema, 3, call)
