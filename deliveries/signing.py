"""Ed25519 signatures of delivery artifacts.

Each artifact's `signature` is the base64 Ed25519 signature of its raw SHA-256 digest (the 32
bytes, not the hex text); anyone verifies it with the public key published at
`GET /api/v1/delivery/signing-key`. The key comes from the environment (the PEM text in
`DELIVERY_SIGNING_KEY_PEM`, or the PEM file named by `DELIVERY_SIGNING_KEY`), or is made once per
installation where every node reaches it (`delivery-signing-key.pem` in the KEYS area of
`storage.Locator`: the data dir, or `keys/` under ORDERLY_CACHE_STORAGE_URL).
"""
from __future__ import annotations

import base64
import threading
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

from portal.catalog import storage

_lock = threading.Lock()
_cache: dict[str, Ed25519PrivateKey] = {}


KEY_NAME = "delivery-signing-key.pem"


def key_path() -> Path:
    """The PEM file named by DELIVERY_SIGNING_KEY, or where the made key is on local disk."""
    configured = getattr(settings, "DELIVERY_SIGNING_KEY", "")
    return Path(configured) if configured else Path(settings.DATA_DIR) / KEY_NAME


def _stored_pem() -> bytes:
    """The installation's key from the KEYS area (every node reaches it), made by whichever
    node asks first: an exclusive write, so two nodes racing both keep the first key."""
    locator = storage.Locator()
    if not locator.exists(storage.KEYS, KEY_NAME):
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        locator.write(storage.KEYS, KEY_NAME, [pem], exclusive=True)
    with locator.open(storage.KEYS, KEY_NAME) as handle:
        return handle.read()


def _key_pem() -> tuple[str, bytes]:
    """(where the key comes from, its PEM bytes)."""
    text = getattr(settings, "DELIVERY_SIGNING_KEY_PEM", "")
    if text:
        return "DELIVERY_SIGNING_KEY_PEM", text.encode("ascii")
    if getattr(settings, "DELIVERY_SIGNING_KEY", ""):
        path = key_path()
        if not path.exists():
            raise FileNotFoundError(f"DELIVERY_SIGNING_KEY names a missing file: {path}")
        return str(path), path.read_bytes()
    source = storage.storage_url(storage.KEYS) or str(key_path())
    cached = _cache.get(source)
    return source, b"" if cached is not None else _stored_pem()


def _settings_fingerprint() -> tuple:
    return (getattr(settings, "DELIVERY_SIGNING_KEY_PEM", ""), getattr(settings, "DELIVERY_SIGNING_KEY", ""),
            getattr(settings, "CACHE_STORAGE_URL", ""), str(getattr(settings, "DATA_DIR", "")))


# The key loaded last and the settings it was loaded under: signing a million artifacts must
# not look the key up (settings, storage, a PEM parse) each time.
_last: tuple[tuple, Ed25519PrivateKey] | None = None


def private_key() -> Ed25519PrivateKey:
    """The installation's key, loaded once per process (again when its settings change)."""
    global _last
    fingerprint = _settings_fingerprint()
    last = _last
    if last is not None and last[0] == fingerprint:
        return last[1]
    key = _load_private_key()
    _last = (fingerprint, key)
    return key


def _load_private_key() -> Ed25519PrivateKey:
    with _lock:
        source, pem = _key_pem()
        key = _cache.get(source)
        if key is None:
            loaded = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise ValueError(f"{source} is not an Ed25519 private key")
            key = _cache[source] = loaded
    return key


def public_key_pem() -> bytes:
    return private_key().public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def sign_sha256(sha256_hex: str) -> str:
    return base64.b64encode(private_key().sign(bytes.fromhex(sha256_hex))).decode("ascii")


def artifact_signature(artifact) -> str:
    """The signature of an artifact, made when it is read: Ed25519 is deterministic, so this is
    the same text a signature made at preparation would be (preparation stores only the
    SHA-256: signing a million files there cost more than hashing them). Rows prepared before
    keep the signature they stored."""
    return artifact.signature or sign_sha256(artifact.sha256)


def verify_sha256(public_pem: bytes, sha256_hex: str, signature_b64: str) -> bool:
    key = serialization.load_pem_public_key(public_pem)
    assert isinstance(key, Ed25519PublicKey)
    try:
        key.verify(base64.b64decode(signature_b64), bytes.fromhex(sha256_hex))
        return True
    except (InvalidSignature, ValueError):
        return False
