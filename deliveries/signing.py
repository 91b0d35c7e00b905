"""Ed25519 signatures of delivery artifacts.

Each artifact's `signature` is the base64 Ed25519 signature of its raw SHA-256 digest (the 32
bytes, not the hex text); anyone verifies it with the public key published at
`GET /api/v1/delivery/signing-key`. The key pair is made once per installation in the data dir
(`delivery-signing-key.pem`), or read from the PEM file named by `DELIVERY_SIGNING_KEY`.
"""
from __future__ import annotations

import base64
import os
import threading
import uuid
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

_lock = threading.Lock()
_cache: dict[str, Ed25519PrivateKey] = {}


def key_path() -> Path:
    configured = getattr(settings, "DELIVERY_SIGNING_KEY", "")
    return Path(configured) if configured else Path(settings.DATA_DIR) / "delivery-signing-key.pem"


def _create_once(path: Path) -> None:
    """Writes a new key unless one exists; two processes racing keep the first (link is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


def private_key() -> Ed25519PrivateKey:
    path = key_path()
    with _lock:
        key = _cache.get(str(path))
        if key is None:
            if not path.exists():
                if getattr(settings, "DELIVERY_SIGNING_KEY", ""):
                    raise FileNotFoundError(f"DELIVERY_SIGNING_KEY names a missing file: {path}")
                _create_once(path)
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise ValueError(f"{path} is not an Ed25519 private key")
            key = _cache[str(path)] = loaded
    return key


def public_key_pem() -> bytes:
    return private_key().public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def sign_sha256(sha256_hex: str) -> str:
    return base64.b64encode(private_key().sign(bytes.fromhex(sha256_hex))).decode("ascii")


def verify_sha256(public_pem: bytes, sha256_hex: str, signature_b64: str) -> bool:
    key = serialization.load_pem_public_key(public_pem)
    assert isinstance(key, Ed25519PublicKey)
    try:
        key.verify(base64.b64decode(signature_b64), bytes.fromhex(sha256_hex))
        return True
    except (InvalidSignature, ValueError):
        return False
