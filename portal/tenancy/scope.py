"""The active project of the current request or task.

Tenant-owned models refuse to be queried when no project is active (see
`portal.tenancy.models.TenantModel`). Views activate the project they resolved from the
request; Celery tasks receive the project id and activate it with `project_scope`.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from .models import Project

_active_project: ContextVar["Project | None"] = ContextVar("orderly_active_project", default=None)


class ScopeError(RuntimeError):
    """A tenant-owned table was queried with no active project: a missing scope is a bug."""


def get_active_project() -> "Project | None":
    return _active_project.get()


def require_active_project() -> "Project":
    project = _active_project.get()
    if project is None:
        raise ScopeError(
            "No active project: wrap the code in project_scope(project), "
            "or use the model's `unscoped_objects` manager on purpose."
        )
    return project


def activate(project: "Project | None") -> Token:
    return _active_project.set(project)


def deactivate(token: Token) -> None:
    _active_project.reset(token)


@contextmanager
def project_scope(project: "Project") -> Iterator["Project"]:
    token = _active_project.set(project)
    try:
        yield project
    finally:
        _active_project.reset(token)
