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

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # The test database is a file in the run's data dir, like the product's, not Django's default
    # shared-cache in-memory database: that one locks whole tables and fails at once
    # ("database table is locked") when a request's reader meets another thread's writer (the
    # zip's marking thread, a live worker), where the real file in WAL mode lets readers run
    # beside a writer and makes writers wait (the busy timeout). Tests run what users run.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-orderly.sqlite3")}  # noqa: F405
