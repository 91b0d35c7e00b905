"""Test settings: the same services as configured (PostgreSQL/Redis in CI), faster hashing."""
import os
import tempfile

# Each test run gets its own data dir, so files on disk never leak between runs.
os.environ.setdefault("ORDERLY_DATA_DIR", tempfile.mkdtemp(prefix="orderly-test-"))
os.environ.setdefault("ORDERLY_NEARLINE_DELAY_SECONDS", "0")

from .base import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
WHITENOISE_AUTOREFRESH = True
