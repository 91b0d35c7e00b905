"""The admin index overview: panels that apps contribute (portal imports no app, so each app
registers its own panel in its AppConfig.ready). A panel function gets the projects the admin
may see and returns `(template name, context)`, or None to show nothing."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from django.db.models import QuerySet

from portal.tenancy.selectors import projects_administered_by

PanelFunction = Callable[..., "Panel | None"]
_PANELS: list[tuple[int, str, PanelFunction]] = []


@dataclass(frozen=True)
class Panel:
    title: str
    template: str
    context: dict


def register_panel(name: str, function: PanelFunction, *, position: int = 100) -> None:
    """Adds (or replaces, by name: ready() may run twice in tests) a panel; lower positions first."""
    _PANELS[:] = [entry for entry in _PANELS if entry[1] != name]
    _PANELS.append((position, name, function))
    _PANELS.sort(key=lambda entry: (entry[0], entry[1]))


def overview_projects(user) -> QuerySet:
    """The projects whose figures the admin may see (superusers: all)."""
    if not (user.is_active and user.is_staff):
        return projects_administered_by(user).none()
    return projects_administered_by(user).order_by("slug")


def overview_panels(user) -> list[Panel]:
    projects = list(overview_projects(user))
    if not projects:
        return []
    return [panel for _, _, function in _PANELS if (panel := function(projects=projects)) is not None]
