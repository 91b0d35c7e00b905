"""Counting failed logins per key in the cache (Redis in production) over a fixed window."""
from django.conf import settings
from django.core.cache import cache


def _key(kind: str, value: str) -> str:
    return f"orderly:login-failures:{kind}:{value}"


def is_blocked(*keys: tuple[str, str]) -> bool:
    limit = settings.TOKEN_RATE_LIMIT_FAILURES
    return any((cache.get(_key(k, v)) or 0) >= limit for k, v in keys)


def record_failure(*keys: tuple[str, str]) -> None:
    window = settings.TOKEN_RATE_LIMIT_WINDOW_SECONDS
    for kind, value in keys:
        key = _key(kind, value)
        if cache.add(key, 1, timeout=window):
            continue
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=window)


def reset(*keys: tuple[str, str]) -> None:
    cache.delete_many([_key(k, v) for k, v in keys])
