"""Standard Webhooks signatures (webhook-id, webhook-timestamp, webhook-signature: v1,<base64>),
and the endpoints' secrets sealed at rest.

A signing secret is an HMAC key: the portal needs it in clear to sign, so it cannot be hashed
like an API token. It is stored sealed (Fernet: AES-128-CBC + HMAC-SHA256) under the keys of
`WEBHOOK_SECRET_KEYS` (the first seals, all open: add a new key first, run
`manage.py webhook_secrets_reseal`, then drop the old one), or without that setting under a
key derived from SECRET_KEY. A database dump alone then gives no one a way to sign.
"""
from __future__ import annotations

import base64
import secrets
from datetime import datetime
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.signals import setting_changed
from standardwebhooks.webhooks import Webhook

from portal.errors import DomainError

SECRET_PREFIX = "whsec_"
SEALED_PREFIX = "fernet:"
SECRET_UNREADABLE = "WEBHOOK_SECRET_UNREADABLE"


class SecretUnreadable(DomainError):
    """A sealed secret that none of the configured keys opens (a key was dropped too early)."""

    def __init__(self):
        super().__init__(SECRET_UNREADABLE, "The endpoint's signing secret cannot be opened with the keys of "
                                             "WEBHOOK_SECRET_KEYS (was a key removed before re-sealing?).")


def secret_new() -> str:
    """A fresh `whsec_<base64 of 32 random bytes>` secret, the form every library accepts."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@lru_cache(maxsize=1)
def _sealer() -> MultiFernet:
    keys = [key.strip() for key in getattr(settings, "WEBHOOK_SECRET_KEYS", []) if key.strip()]
    if not keys:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=b"orderly webhook secrets").derive(settings.SECRET_KEY.encode())
        keys = [base64.urlsafe_b64encode(derived).decode()]
    return MultiFernet([Fernet(key) for key in keys])


def _forget_keys(*, setting, **kwargs) -> None:
    if setting in ("WEBHOOK_SECRET_KEYS", "SECRET_KEY"):
        _sealer.cache_clear()


setting_changed.connect(_forget_keys)


def secret_seal(secret: str) -> str:
    return SEALED_PREFIX + _sealer().encrypt(secret.encode()).decode()


def secret_open(stored: str) -> str:
    """The clear secret of a stored value (values written before sealing are clear)."""
    if not stored.startswith(SEALED_PREFIX):
        return stored
    try:
        return _sealer().decrypt(stored[len(SEALED_PREFIX):].encode()).decode()
    except InvalidToken:
        raise SecretUnreadable() from None


def secret_reseal(stored: str) -> str:
    """`stored` sealed under the first key (clear values sealed); SecretUnreadable as secret_open."""
    if not stored.startswith(SEALED_PREFIX):
        return secret_seal(stored)
    try:
        return SEALED_PREFIX + _sealer().rotate(stored[len(SEALED_PREFIX):].encode()).decode()
    except InvalidToken:
        raise SecretUnreadable() from None


def signed_headers(*, secret: str, msg_id: str, payload: str, at: datetime) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": "Orderly-Webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=payload),
    }
