"""Regular expressions that users write (basket file-name patterns) or that their queries
become (catalog wildcards) run in linear time.

Python's `re` backtracks: `(a|aa)*c` against a long name of `a`s holds the GIL for minutes and
stalls every thread of the web process. Patterns are checked with RE2 (no backreferences or
lookarounds; what RE2 cannot express is refused) and bounded in length before any database
sees them, and on SQLite the REGEXP function Django installs (Python `re`) is replaced by RE2.
PostgreSQL's own engine is not backtracking for what RE2 accepts.
"""
from __future__ import annotations

import functools

import re2

MAX_USER_PATTERN_LENGTH = 500

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is the client's error, not a log line
_OPTIONS.max_mem = 8 << 20  # bounds the compiled program (and so `x{1000}{1000}` shapes)


class PatternRefused(ValueError):
    """Not a regular expression RE2 can run (the message says why), or too long."""


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str):
    return re2.compile(pattern, _OPTIONS)


def user_pattern_check(pattern: str, *, max_length: int = MAX_USER_PATTERN_LENGTH) -> None:
    """Raises PatternRefused unless `pattern` is at most `max_length` characters and RE2
    compiles it."""
    if len(pattern) > max_length:
        raise PatternRefused(f"at most {max_length} characters")
    try:
        _compiled(pattern)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) \
            else str(exc)
        raise PatternRefused(f"not a regular expression that runs in linear time ({reason})") from None


def sqlite_regexp(pattern: str | None, string) -> bool | None:
    """SQLite's REGEXP (Django's `__regex` / `__iregex` lookups) in RE2, with the semantics of
    Django's own implementation (NULL in, NULL out; search, not full match)."""
    if pattern is None or string is None:
        return None
    if not isinstance(string, str):
        string = str(string)
    return _compiled(pattern).search(string) is not None


def install_sqlite_regexp(sender, connection, **kwargs) -> None:
    """`connection_created` receiver: every new SQLite connection gets the RE2 REGEXP."""
    if connection.vendor == "sqlite":
        connection.connection.create_function("REGEXP", 2, sqlite_regexp, deterministic=True)
