"""Domain exceptions: what went wrong, in the domain's words, with a wire code. No HTTP here.

Services, selectors, transitions, models and tasks raise these; each protocol edge (REGARDS
`{"messages"}`, RFC 9457 problem+json, the delivery `error` object, page messages) maps them
in one table (`portal/api/errors.py` for the APIs). The class says what kind of failure it is;
`code` is the documented wire code (e.g. "ORDER_MUST_BE_PENDING_OR_RUNNING").
"""
from __future__ import annotations


class DomainError(Exception):
    default_code = "APP.unknown"

    def __init__(self, code: str | None = None, message: str | None = None, **details):
        self.code = code or self.default_code
        self.message = message or self.code
        self.details = details  # extra fields an edge may show (e.g. position of a syntax error)
        super().__init__(self.message)


class NotFound(DomainError):
    """Does not exist, or the caller may not know it exists (both look the same from outside)."""

    default_code = "NOT_FOUND"


class NotAllowed(DomainError):
    """Exists and is visible, but this caller may not do this to it."""

    default_code = "NOT_ALLOWED"


class NotAuthenticated(DomainError):
    """The caller's credential (e.g. a public order token) is missing, wrong or expired."""

    default_code = "NOT_AUTHENTICATED"


class Refused(DomainError):
    """The object's current state forbids the action (e.g. resuming an order not paused)."""

    default_code = "REFUSED"


class Invalid(DomainError):
    """The input is wrong (syntax, range, length, unknown name)."""

    default_code = "INVALID"


class Gone(DomainError):
    """It existed and is no more (e.g. a file of an expired order)."""

    default_code = "GONE"


class NotReady(DomainError):
    """It will exist later (e.g. a file still being staged): ask again."""

    default_code = "NOT_READY"


class Failed(DomainError):
    """It exists but its processing failed (e.g. a file that could not be staged or read)."""

    default_code = "FAILED"


class LimitExceeded(DomainError):
    """A quota or capacity would be exceeded (e.g. a package larger than the delivery cache)."""

    default_code = "LIMIT_EXCEEDED"


class Unavailable(DomainError):
    """A service it depends on (e.g. the object store) cannot be reached now: try again later."""

    default_code = "UNAVAILABLE"
