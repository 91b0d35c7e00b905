"""Every write to webhooks: endpoints, publishing events into the outbox, sending attempts.

Apps publish with `webhook_publish` inside the transaction that makes the change; the
message rows commit (or roll back) with it and are sent by Celery after commit. Nothing here
knows orders or deliveries: a publisher passes the resource as its API shows it and the user
ids that may read it.
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Callable, Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from portal.dates import iso_utc
from portal.errors import Invalid
from portal.tenancy.models import Membership, Project

from . import events, network, signing
from .models import MessageStatus, WebhookAttempt, WebhookEndpoint, WebhookMessage

log = logging.getLogger(__name__)

INVALID_EVENT_TYPE = "WEBHOOK_INVALID_EVENT_TYPE"
DEFAULT_RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000)  # 5 s, 5 min, 30 min, 2 h, 5 h, 10 h


def retry_delays() -> tuple[float, ...]:
    return tuple(getattr(settings, "WEBHOOKS_RETRY_DELAYS", DEFAULT_RETRY_DELAYS))


def _timeout() -> float:
    return float(getattr(settings, "WEBHOOKS_TIMEOUT_SECONDS", 10))


def claim_stale_after() -> timedelta:
    """A claim older than this belongs to a worker that died mid-attempt."""
    return timedelta(seconds=getattr(settings, "WEBHOOKS_CLAIM_STALE_SECONDS", 2 * _timeout() + 30))


def _send_on_commit(message_id: int, countdown: float = 0) -> None:
    def send():
        from .tasks import webhook_send_task

        webhook_send_task.apply_async((message_id,), countdown=countdown or None)

    transaction.on_commit(send)


# --- endpoints -------------------------------------------------------------------------------

def _validated_events(event_types: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(event_types))
    unknown = [t for t in chosen if t not in events.SUBSCRIBABLE]
    if unknown or not chosen:
        raise Invalid(INVALID_EVENT_TYPE,
                      f"Unknown event type {unknown[0]!r}." if unknown else "Choose at least one event type.",
                      allowed=list(events.SUBSCRIBABLE))
    return chosen


@transaction.atomic
def webhook_endpoint_create(*, project: Project, owner, url: str, event_types: Iterable[str],
                            description: str = "") -> WebhookEndpoint:
    """Registers a callback of `owner` in `project`; its `secret` is shown to the caller once.

    The URL is refused (Invalid WEBHOOK_URL_REFUSED) unless https and publicly routable."""
    chosen = _validated_events(event_types)
    network.url_target(url)
    return WebhookEndpoint.objects.create(project=project, owner=owner, url=url, events=chosen,
                                          description=description or "", secret=signing.secret_new())


@transaction.atomic
def webhook_secrets_reseal() -> int:
    """Every endpoint's secret (all projects: an operator's key rotation) sealed under the first
    key of WEBHOOK_SECRET_KEYS; all or nothing (SecretUnreadable when a key that sealed one is gone)."""
    endpoints = WebhookEndpoint.unscoped_objects.select_for_update().only("pk", "sealed_secret").order_by("pk")
    count = 0
    for endpoint in endpoints:
        WebhookEndpoint.unscoped_objects.filter(pk=endpoint.pk).update(
            sealed_secret=signing.secret_reseal(endpoint.sealed_secret))
        count += 1
    return count


@transaction.atomic
def webhook_endpoint_delete(*, project: Project, endpoint: WebhookEndpoint) -> None:
    WebhookEndpoint.objects.filter(project=project, pk=endpoint.pk).delete()


# --- publishing (the outbox) -----------------------------------------------------------------

def _payload(event_type: str, data: dict, at: datetime) -> str:
    return json.dumps({"type": event_type, "timestamp": iso_utc(at), "data": data}, separators=(",", ":"),
                      sort_keys=False)


def _message_create(*, project: Project, endpoint: WebhookEndpoint, event_type: str, payload: str,
                    now: datetime) -> WebhookMessage:
    message = WebhookMessage.unscoped_objects.create(
        project=project, endpoint=endpoint, msg_id=f"msg_{uuid.uuid4().hex}", event_type=event_type,
        payload=payload, created_at=now, next_attempt_at=now)
    _send_on_commit(message.pk)
    return message


def webhook_publish(*, project: Project, event_type: str, data: dict | Callable[[], dict],
                    audience: Iterable[int] | Callable[[], Iterable[int]] | None) -> list[int]:
    """Puts one message per subscribed endpoint that may read the resource into the outbox.

    Call it inside the transaction that makes the change: the messages commit with it and are
    sent after commit. `data` is the resource as the API shows it; `audience` the ids of the
    users who may read it (None: every member). Both may be callables, evaluated only when
    an endpoint listens. Endpoints of other projects, disabled ones and those whose owner
    left the project get nothing. Returns the new message ids.
    """
    if event_type not in events.EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    # Every status change of every order passes here: one plain query when nobody listens.
    candidates = [e for e in WebhookEndpoint.unscoped_objects.filter(project=project, disabled_at__isnull=True)
                  .only("id", "owner_id", "events", "project_id") if event_type in (e.events or [])]
    if not candidates:
        return []
    readers = audience() if callable(audience) else audience
    if readers is not None:
        readers = set(readers)
        candidates = [e for e in candidates if e.owner_id in readers]
    members = set(Membership.objects.filter(project=project, user_id__in={e.owner_id for e in candidates})
                  .values_list("user_id", flat=True)) if candidates else set()
    candidates = [e for e in candidates if e.owner_id in members]
    if not candidates:
        return []
    now = timezone.now()
    payload = _payload(event_type, data() if callable(data) else data, now)
    return [_message_create(project=project, endpoint=e, event_type=event_type, payload=payload, now=now).pk
            for e in candidates]


@transaction.atomic
def webhook_endpoint_ping(*, project: Project, endpoint: WebhookEndpoint) -> WebhookMessage:
    """Queues a `ping` to the endpoint (whatever it subscribed to)."""
    now = timezone.now()
    payload = _payload(events.PING, {"endpointId": endpoint.pk, "url": endpoint.url,
                                     "project": project.slug}, now)
    return _message_create(project=project, endpoint=endpoint, event_type=events.PING, payload=payload, now=now)


@transaction.atomic
def webhook_message_resend(*, project: Project, message_id: int) -> bool:
    """Sends a message again (same webhook-id) with a fresh series of attempts; re-enables its
    endpoint if it was disabled. Returns False when it is being sent right now."""
    message = WebhookMessage.unscoped_objects.select_for_update().filter(project=project, pk=message_id).first()
    if message is None or (message.status == MessageStatus.PENDING and message.claimed_at is not None):
        return False
    now = timezone.now()
    WebhookMessage.unscoped_objects.filter(pk=message.pk).update(
        status=MessageStatus.PENDING, attempts=0, next_attempt_at=now, claimed_at=None, delivered_at=None)
    WebhookEndpoint.unscoped_objects.filter(pk=message.endpoint_id).update(disabled_at=None, disabled_reason="")
    _send_on_commit(message.pk)
    return True


# --- sending ---------------------------------------------------------------------------------

def _claim(message_id: int) -> datetime | None:
    """Takes the message if it is due and nobody sends it. First attempts go in the order the
    events happened: a message waits while an older one of its endpoint was never tried (the
    older one's send hands over to it); retries never hold younger messages back."""
    now = timezone.now()
    claimable = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - claim_stale_after())
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    older_untried = WebhookMessage.unscoped_objects.filter(  # (project, endpoint, -id) index
        project_id=OuterRef("project_id"), endpoint_id=OuterRef("endpoint_id"), id__lt=OuterRef("id"),
        status=MessageStatus.PENDING, attempts=0)
    if WebhookMessage.unscoped_objects.filter(Q(pk=message_id, status=MessageStatus.PENDING) & due & claimable)\
            .filter(~Exists(older_untried)).update(claimed_at=now):
        return now
    return None


def _send_next_on_commit(message: WebhookMessage) -> None:
    """Hands over to the endpoint's next message that was never tried (see `_claim`)."""
    next_id = (WebhookMessage.unscoped_objects.filter(project_id=message.project_id, endpoint_id=message.endpoint_id,
                                                      id__gt=message.pk, status=MessageStatus.PENDING, attempts=0)
               .order_by("id").values_list("id", flat=True).first())
    if next_id is not None:
        _send_on_commit(next_id)


def _disable_endpoint(endpoint: WebhookEndpoint, reason: str) -> None:
    if not WebhookEndpoint.unscoped_objects.filter(pk=endpoint.pk, disabled_at__isnull=True).update(
            disabled_at=timezone.now(), disabled_reason=reason[:2000]):
        return
    owner_email, url, project_label = endpoint.owner.email, endpoint.url, endpoint.project.label
    transaction.on_commit(lambda: send_mail(
        f"[{project_label}] Webhook endpoint disabled",
        f"Orderly could not deliver events to your webhook endpoint\n{url}\n"
        f"after every retry ({reason}). It is disabled: no more events are sent to it.\n\n"
        f"Fix the receiver, then resend the failed message from the project's webhook settings "
        f"page or register the endpoint again.\n",
        settings.DEFAULT_FROM_EMAIL, [owner_email], fail_silently=True))


def webhook_message_send(*, message_id: int) -> str:
    """Makes one attempt to deliver a message, if it is due and nobody else is sending it.

    Success: delivered. Failure: the next attempt is scheduled after the next retry delay
    (a short one as a delayed task, longer ones by the beat sweep); after the last delay the
    message failed and its endpoint is disabled (its owner is mailed). Returns what happened.
    """
    claim = _claim(message_id)
    if claim is None:
        return "not-claimed"
    message = WebhookMessage.unscoped_objects.select_related("endpoint", "endpoint__owner", "endpoint__project")\
        .get(pk=message_id)
    endpoint = message.endpoint
    if not endpoint.is_active and message.event_type != events.PING:
        WebhookMessage.unscoped_objects.filter(pk=message.pk, claimed_at=claim).update(
            status=MessageStatus.FAILED, claimed_at=None, next_attempt_at=None,
            last_error="The endpoint is disabled.")
        _send_next_on_commit(message)
        return "endpoint-disabled"
    at = timezone.now()
    started = time.monotonic()
    try:
        headers = signing.signed_headers(secret=endpoint.secret, msg_id=message.msg_id, payload=message.payload,
                                         at=at)
    except signing.SecretUnreadable as exc:  # logged as a failed attempt; retried (the key may come back)
        answer = network.Answer(None, exc.message)
    else:
        answer = network.post(endpoint.url, body=message.payload.encode(), headers=headers, timeout=_timeout())
    duration_ms = int((time.monotonic() - started) * 1000)
    number = message.attempts + 1
    delays = retry_delays()
    with transaction.atomic():
        mine = WebhookMessage.unscoped_objects.filter(pk=message.pk, claimed_at=claim)
        WebhookAttempt.unscoped_objects.create(project_id=message.project_id, message=message, number=number,
                                               at=at, status_code=answer.status_code, error=answer.error,
                                               duration_ms=duration_ms)
        common = dict(attempts=F("attempts") + 1, claimed_at=None, last_status_code=answer.status_code,
                      last_error=answer.error)
        if number == 1:
            _send_next_on_commit(message)
        if not answer.error:
            mine.update(status=MessageStatus.DELIVERED, delivered_at=timezone.now(), next_attempt_at=None, **common)
            return "delivered"
        if number > len(delays):
            mine.update(status=MessageStatus.FAILED, next_attempt_at=None, **common)
            if message.event_type != events.PING:
                _disable_endpoint(endpoint, answer.error)
            return "failed"
        delay = delays[number - 1]
        mine.update(next_attempt_at=timezone.now() + timedelta(seconds=delay), **common)
        # Short waits ride on the broker; long ones are picked up by the beat sweep.
        if delay <= getattr(settings, "WEBHOOKS_COUNTDOWN_MAX_SECONDS", 60):
            _send_on_commit(message.pk, countdown=delay)
    return "retry"


def webhooks_sweep(*, now: datetime | None = None, stale_after: timedelta | None = None,
                   batch_size: int = 500) -> int:
    """Queues a send of every pending message that is due and not being sent: retries whose
    time has come, and messages a killed worker (or a lost enqueue) left behind. Harmless
    twice: a send claims the message first. Returns how many were queued."""
    from .tasks import webhook_send_task

    now = now or timezone.now()
    stale_after = stale_after or claim_stale_after()
    grace = timedelta(seconds=getattr(settings, "WEBHOOKS_SWEEP_GRACE_SECONDS", 10))
    due = (WebhookMessage.unscoped_objects.filter(status=MessageStatus.PENDING, next_attempt_at__lte=now - grace)
           .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - stale_after))
           .order_by("next_attempt_at").values_list("id", flat=True)[:batch_size])
    ids = list(due)
    for message_id in ids:
        webhook_send_task.delay(message_id)
    return len(ids)
