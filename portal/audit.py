"""Who is acting right now: the person of the current request, or the Celery task.

Event records (an order's history, a delivery's) note who or what made a change without
every service taking an `actor` argument: the request middleware and Celery's task signals
set it here, the one mutator reads it.
"""
from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from celery import signals


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    label: str  # an email, "task orders.expire_sweep", or "system"


_request: ContextVar = ContextVar("orderly_acting_request", default=None)
_task: ContextVar[str | None] = ContextVar("orderly_acting_task", default=None)


def current_actor() -> Actor:
    request = _request.get()
    if request is not None:
        # DRF copies the user it authenticated (bearer token) onto the Django request.
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return Actor(user.pk, user.email)
    task = _task.get()
    if task:
        return Actor(None, f"task {task}")
    return Actor(None, "system")


class ActorMiddleware:
    """Makes the request (and so its user, once authenticated) the current actor."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


_task_tokens: dict[str, object] = {}


@signals.task_prerun.connect
def _task_started(task_id=None, task=None, **_):
    # An eager task (tests) runs inside the request that enqueued it: the request wins.
    _task_tokens[task_id] = _task.set(getattr(task, "name", None))


@signals.task_postrun.connect
def _task_ended(task_id=None, **_):
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        try:
            _task.reset(token)
        except ValueError:  # set in another context (a pool that moved the task): just clear
            _task.set(None)
