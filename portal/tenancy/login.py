"""Login pages (`/accounts/login/`, `/admin/login/`) throttled by the same limiter as the
token endpoint: past the limit the page answers 429 with Retry-After, even for the right
password, and failures count whether they come through a page or the API."""
from __future__ import annotations

from functools import wraps

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from . import ratelimit

TOO_MANY_ATTEMPTS = "too_many_attempts"


class ThrottledLoginMixin:
    def clean(self):
        attempt = ratelimit.LoginAttempt.of(self.request, self.data.get("username", ""))
        if ratelimit.is_blocked(attempt):
            raise ValidationError("Too many failed attempts; try again later.", code=TOO_MANY_ATTEMPTS)
        try:
            cleaned = super().clean()
        except ValidationError:
            ratelimit.record_failure(attempt)
            raise
        ratelimit.record_success(attempt)
        return cleaned


class ThrottledLoginForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass


def throttled(view):
    """A locked-out login form is answered with 429 and Retry-After (the page still renders)."""
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        form = (getattr(response, "context_data", None) or {}).get("form")
        if form is not None and form.has_error(NON_FIELD_ERRORS, TOO_MANY_ATTEMPTS):
            response.status_code = 429
            response["Retry-After"] = str(ratelimit.retry_after_seconds())
        return response
    return wrapped
