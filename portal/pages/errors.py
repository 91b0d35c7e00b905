"""The pages' edge: how a domain error (`portal/errors.py`) shows on a page, in one table.

Kinds that mean "not for you" become Django's error pages (raised again by `project_page`);
every other kind becomes a message on the page, in people's words when the app gives a text
for the code (the code itself is shown beside it).
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from portal import errors as domain

ERROR_PAGE_BY_DOMAIN_ERROR: dict[type[domain.DomainError], type[Exception]] = {
    domain.NotFound: Http404,
    domain.NotAllowed: PermissionDenied,
}


def error_page_for(exc: domain.DomainError) -> Exception | None:
    """The Django exception that renders `exc` as an error page, or None (show a message)."""
    for klass in type(exc).__mro__:
        if klass in ERROR_PAGE_BY_DOMAIN_ERROR:
            return ERROR_PAGE_BY_DOMAIN_ERROR[klass](exc.message)
    return None


def page_message(code: str, texts: dict[str, str]) -> str:
    text = texts.get(code)
    return f"{text} ({code})" if text else code
