"""Counting failed logins in the cache (Redis in production) over a fixed window.

One limiter for every way to log in (the token endpoint, `/accounts/login/`, `/admin/login/`).
Failures are counted per (user, client address) and, with a higher ceiling, per client
address: guessing one user's password from one address locks out only that pair, so nobody
can lock a user out from elsewhere, while one address cannot try many users for long. The
client address is the socket's peer, or the one a trusted reverse proxy puts in
CLIENT_ADDRESS_HEADER (else every client behind the proxy would share the proxy's address).
"""
from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache


def client_address(request) -> str:
    """The client's IP address: REMOTE_ADDR, or when CLIENT_ADDRESS_HEADER names the header a
    trusted proxy sets (e.g. X-Forwarded-For), the entry CLIENT_ADDRESS_PROXIES positions from
    its right end (what the nearest trusted proxy saw; entries to its left are the client's
    say and not believed)."""
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    header = getattr(settings, "CLIENT_ADDRESS_HEADER", "")
    if not header:
        return remote
    raw = request.META.get("HTTP_" + header.upper().replace("-", "_"), "")
    entries = [entry.strip() for entry in raw.split(",") if entry.strip()]
    proxies = max(1, int(getattr(settings, "CLIENT_ADDRESS_PROXIES", 1)))
    if len(entries) < proxies:
        return remote
    candidate = entries[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


@dataclass(frozen=True)
class LoginAttempt:
    username: str
    address: str

    @classmethod
    def of(cls, request, username: str) -> "LoginAttempt":
        return cls(username=(username or "").strip().lower(), address=client_address(request))

    def _user_key(self) -> str:
        digest = hashlib.sha256(f"{self.username}\0{self.address}".encode()).hexdigest()
        return f"orderly:login-failures:user-address:{digest}"

    def _address_key(self) -> str:
        return f"orderly:login-failures:address:{self.address}"

    def limits(self) -> list[tuple[str, int]]:
        return [(self._user_key(), settings.TOKEN_RATE_LIMIT_FAILURES),
                (self._address_key(), settings.TOKEN_RATE_LIMIT_ADDRESS_FAILURES)]


def retry_after_seconds() -> int:
    return int(settings.TOKEN_RATE_LIMIT_WINDOW_SECONDS)


def is_blocked(attempt: LoginAttempt) -> bool:
    counts = cache.get_many([key for key, _ in attempt.limits()])
    return any((counts.get(key) or 0) >= limit for key, limit in attempt.limits())


def record_failure(attempt: LoginAttempt) -> None:
    window = settings.TOKEN_RATE_LIMIT_WINDOW_SECONDS
    for key, _ in attempt.limits():
        if cache.add(key, 1, timeout=window):
            continue
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=window)


def record_success(attempt: LoginAttempt) -> None:
    """A correct password clears that user's count from that address (not the address's)."""
    cache.delete(attempt._user_key())
