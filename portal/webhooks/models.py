"""Webhook endpoints, their outbox of messages and the log of every delivery attempt.

A message is written in the same transaction as the event it tells about (the outbox) and
sent after commit; its `msg_id` is the `webhook-id` of every attempt, so a receiver that sees
it twice (a worker killed after sending, before recording) knows it is the same message.
"""
from django.conf import settings
from django.db import models

from portal.tenancy.models import TenantModel

from . import signing


class WebhookEndpoint(TenantModel):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="Event types sent to this endpoint.")
    # The `whsec_<base64>` signing secret, sealed (signing.secret_seal): read and set it as `secret`.
    sealed_secret = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when a message exhausted its retries: nothing more is sent until re-created.
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["project", "owner"], name="webhook_endpoint_owner")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.url}"

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None

    @property
    def secret(self) -> str:
        """The signing secret in clear (signing.SecretUnreadable when no configured key opens it)."""
        return signing.secret_open(self.sealed_secret)

    @secret.setter
    def secret(self, value: str) -> None:
        self.sealed_secret = signing.secret_seal(value)


class MessageStatus(models.TextChoices):
    PENDING = "pending"      # to send (first attempt or a retry at next_attempt_at)
    DELIVERED = "delivered"  # a 2xx answer
    FAILED = "failed"        # every attempt failed (the endpoint was disabled)


class WebhookMessage(TenantModel):
    """One event for one endpoint: the outbox row and the delivery log entry."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="messages")
    msg_id = models.CharField(max_length=64, unique=True, help_text="The webhook-id header of every attempt.")
    event_type = models.CharField(max_length=40)
    # The exact JSON text that is signed and sent (same bytes on every attempt).
    payload = models.TextField()
    created_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A worker sending it now (compare-and-set claim; a stale claim is taken over by the sweep).
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["project", "endpoint", "-id"], name="webhook_message_log"),
            models.Index(fields=["status", "next_attempt_at"], name="webhook_message_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.msg_id}"


class WebhookAttempt(TenantModel):
    """One HTTP attempt of a message."""

    message = models.ForeignKey(WebhookMessage, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["project", "message"], name="webhook_attempt_message")]
