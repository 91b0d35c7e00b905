"""Secrets stay out of logs: tokens in query strings (`orderToken`, `access_token`, ...) and
credentials in headers are replaced by `[redacted]` in gunicorn's access log and in records
of the portal's own loggers."""
from __future__ import annotations

import logging
import re

from gunicorn.glogging import Logger as GunicornLogger

REDACTED = "[redacted]"
# Query parameters whose values grant access (compared case-insensitively).
SECRET_PARAMETERS = ("orderToken", "token", "access_token", "refresh_token", "id_token", "password",
                     "client_secret", "secret", "api_key", "apikey", "signature", "sig")
_SECRET_IN_QUERY = re.compile(
    r"(?i)((?:^|[?&;])(?:%s)=)[^&;#\s\"']*" % "|".join(re.escape(name) for name in SECRET_PARAMETERS))
SECRET_HEADERS = ("authorization", "cookie", "x-api-key", "proxy-authorization")


def redact(text: str) -> str:
    """`text` with the values of secret query parameters replaced."""
    return _SECRET_IN_QUERY.sub(lambda m: m.group(1) + REDACTED, text)


class RedactSecretsFilter(logging.Filter):
    """A logging filter for handlers: formats the record's message once, redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


class RedactingGunicornLogger(GunicornLogger):
    """gunicorn's logger (`--logger-class portal.logs.RedactingGunicornLogger`): the access log
    line never carries a token, whatever `--access-logformat` asks for."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in atoms.items():
            # Header atoms are `{name}i` (request), `{name}o` (response), `{HTTP_NAME}e` (environ).
            name = key[1:-2].lower().removeprefix("http_").replace("_", "-") if key.startswith("{") else ""
            if name in SECRET_HEADERS:
                atoms[key] = REDACTED
            elif isinstance(value, str):
                atoms[key] = redact(value)
        return atoms
