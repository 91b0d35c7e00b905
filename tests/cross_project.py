"""Registry for the cross-project harness (tests/tenancy/test_cross_project.py).

The harness walks every URL pattern under /api/ and calls each method the view offers as a
member of project B, on objects of project A. Path parameters are filled by providers that
create project A's objects; every app registers its own in `tests/<app>/cross_project.py`:

    from tests.cross_project import provides

    @provides("orderId")
    def order_in_a(ctx):      # ctx.project is A, ctx.owner / ctx.admin are A's members
        return create_order(project=ctx.project, owner=ctx.owner.user, label=ctx.marker).pk

An endpoint whose path parameter has no provider makes the harness fail, so no endpoint
escapes it. Put `ctx.marker` in labels/names of what you create: B must never see it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

PROVIDERS: dict[str, Callable[["HarnessContext"], Any]] = {}

# URL names that are not tenant-scoped (no project objects behind them).
PUBLIC_URL_NAMES: set[str] = {"oauth-token", "schema", "swagger-ui"}


@dataclass
class HarnessContext:
    project: Any
    owner: Any
    admin: Any
    marker: str
    cache: dict = field(default_factory=dict)

    def once(self, key: str, factory: Callable[[], Any]) -> Any:
        """Providers that share an object (an order and its file) create it only once."""
        if key not in self.cache:
            self.cache[key] = factory()
        return self.cache[key]


def provides(*param_names: str):
    def register(func):
        for name in param_names:
            PROVIDERS[name] = func
        return func

    return register
