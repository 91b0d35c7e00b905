"""Signing secrets are sealed at rest: a dump of the table signs nothing, keys rotate, and a
dropped key fails loudly (a logged attempt, a refusing command) instead of signing wrongly."""
from __future__ import annotations

import importlib

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.management import CommandError, call_command
from standardwebhooks.webhooks import Webhook

from portal.webhooks import services, signing
from portal.webhooks.models import MessageStatus, WebhookAttempt, WebhookEndpoint, WebhookMessage
from tests.orders.conftest import ORDERS_URL, fill_basket, make_objects
from tests.webhooks.test_delivery import register

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def stored(endpoint_id: int) -> str:
    return WebhookEndpoint.unscoped_objects.values_list("sealed_secret", flat=True).get(pk=endpoint_id)


def test_the_table_holds_no_secret_in_clear_and_signatures_verify(member, private_hooks, receiver, settings):
    settings.WEBHOOK_SECRET_KEYS = [OLD]
    shown = register(member, receiver, ["order.created"])
    raw = stored(shown["id"])
    assert raw.startswith(signing.SEALED_PREFIX) and shown["secret"] not in raw
    assert shown["secret"].startswith("whsec_")
    fill_basket(member, make_objects(member.project, count=1))
    member.client.post(ORDERS_URL, {}, format="json")
    message = WebhookMessage.unscoped_objects.get(endpoint_id=shown["id"])
    assert services.webhook_message_send(message_id=message.pk) == "delivered"
    assert Webhook(shown["secret"]).verify(receiver.received[0].body, receiver.received[0].headers)["type"] \
        == "order.created"


def test_keys_rotate_by_prepending_and_resealing(member, private_hooks, receiver, settings, capsys):
    settings.WEBHOOK_SECRET_KEYS = [OLD]
    shown = register(member, receiver, ["order.created"])
    before = stored(shown["id"])
    settings.WEBHOOK_SECRET_KEYS = [NEW, OLD]
    assert WebhookEndpoint.unscoped_objects.get(pk=shown["id"]).secret == shown["secret"]  # old still opens
    call_command("webhook_secrets_reseal")
    assert "Re-sealed 1 webhook" in capsys.readouterr().out
    after = stored(shown["id"])
    assert after != before
    settings.WEBHOOK_SECRET_KEYS = [NEW]  # the old key dropped: the resealed secret opens
    assert WebhookEndpoint.unscoped_objects.get(pk=shown["id"]).secret == shown["secret"]
    settings.WEBHOOK_SECRET_KEYS = [OLD]
    with pytest.raises(signing.SecretUnreadable):
        WebhookEndpoint.unscoped_objects.get(pk=shown["id"]).secret


def test_resealing_without_the_sealing_key_changes_nothing(member, private_hooks, receiver, settings):
    settings.WEBHOOK_SECRET_KEYS = [OLD]
    first = register(member, receiver, ["order.created"])
    settings.WEBHOOK_SECRET_KEYS = [NEW]
    second = register(member, receiver, ["order.created"])
    rows = {pk: stored(pk) for pk in (first["id"], second["id"])}
    with pytest.raises(CommandError) as refused:
        call_command("webhook_secrets_reseal")
    assert refused.value.returncode == 2 and "WEBHOOK_SECRET_KEYS" in str(refused.value)
    assert {pk: stored(pk) for pk in rows} == rows  # all or nothing


def test_a_secret_no_key_opens_is_a_logged_failed_attempt_not_a_wrong_signature(member, private_hooks, receiver,
                                                                                 settings):
    settings.WEBHOOK_SECRET_KEYS = [OLD]
    shown = register(member, receiver, ["order.created"])
    fill_basket(member, make_objects(member.project, count=1))
    member.client.post(ORDERS_URL, {}, format="json")
    message = WebhookMessage.unscoped_objects.get(endpoint_id=shown["id"])
    settings.WEBHOOK_SECRET_KEYS = [NEW]
    assert services.webhook_message_send(message_id=message.pk) == "retry"
    assert receiver.received == []  # nothing sent unsigned or signed with another key
    message.refresh_from_db()
    assert message.status == MessageStatus.PENDING and "WEBHOOK_SECRET_KEYS" in message.last_error
    assert WebhookAttempt.unscoped_objects.get(message=message).status_code is None


def test_the_migration_seals_secrets_stored_in_clear(member, private_hooks, receiver, settings):
    shown = register(member, receiver, ["order.created"])
    WebhookEndpoint.unscoped_objects.filter(pk=shown["id"]).update(sealed_secret=shown["secret"])  # as before 0002
    assert WebhookEndpoint.unscoped_objects.get(pk=shown["id"]).secret == shown["secret"]  # clear values read
    migration = importlib.import_module("portal.webhooks.migrations.0002_sealed_secrets")
    migration.seal_clear_secrets(apps, None)
    assert stored(shown["id"]).startswith(signing.SEALED_PREFIX)
    assert WebhookEndpoint.unscoped_objects.get(pk=shown["id"]).secret == shown["secret"]
