"""Settings for every mode, read from environment variables (documented in README.md).

With nothing set this is the embedded default: SQLite, local disk storage and a Celery
broker on the file system, all under ORDERLY_DATA_DIR. Set DATABASE_URL and
CELERY_BROKER_URL for PostgreSQL and Redis.
"""
import secrets
from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

DATA_DIR = Path(env.str("ORDERLY_DATA_DIR", default=str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _embedded_secret_key() -> str:
    """A per-installation key kept in the data dir, so sessions survive restarts."""
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", default="") or _embedded_secret_key()
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Absolute base of links put in mails and metalinks (no trailing slash).
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "portal",
    "portal.tenancy",
    "portal.catalog",
    "portal.webhooks",
    "basket",
    "orders",
    "deliveries",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "portal.api.strict.NulCharactersRefusedMiddleware",
    "portal.api.strict.MethodNotAllowedFirstMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.tenancy.middleware.ProjectScopeResetMiddleware",
    "portal.audit.ActorMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
AUTH_USER_MODEL = "tenancy.User"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'orderly.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker share the file: WAL lets readers run beside a writer,
    # IMMEDIATE transactions take the write lock up front instead of failing mid-way.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# The embedded server serves static files straight from the apps: no collectstatic step.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)

# --- Storage --------------------------------------------------------------------------
# Local directories of the two storage tiers and of the caches (see portal.catalog.storage).
ONLINE_STORAGE_DIR = Path(env.str("ORDERLY_ONLINE_DIR", default=str(DATA_DIR / "online")))
NEARLINE_STORAGE_DIR = Path(env.str("ORDERLY_NEARLINE_DIR", default=str(DATA_DIR / "nearline")))
ORDER_CACHE_DIR = Path(env.str("ORDERLY_ORDER_CACHE_DIR", default=str(DATA_DIR / "order-cache")))
DELIVERY_CACHE_DIR = Path(
    env.str("ORDERLY_DELIVERY_CACHE_DIR", default=str(DATA_DIR / "delivery-cache"))
)
# Simulated nearline (tape) tier: delay before a restore starts, copy bandwidth, failure rate.
# Per restored file; the default keeps the demo lively (a 450-file order takes ~1.5 min).
NEARLINE_RESTORE_DELAY_SECONDS = env.float("ORDERLY_NEARLINE_DELAY_SECONDS", default=0.2)
NEARLINE_RESTORE_BANDWIDTH_BPS = env.int("ORDERLY_NEARLINE_BANDWIDTH_BPS", default=50_000_000)
NEARLINE_RESTORE_FAILURE_RATE = env.float("ORDERLY_NEARLINE_FAILURE_RATE", default=0.0)

# --- Mail -----------------------------------------------------------------------------
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
else:
    # Embedded default: each mail is a file under the data dir. Mails carry links with order
    # tokens, so they are not printed into a process's log.
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(DATA_DIR / "mail")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="orderly@localhost")

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = DATA_DIR / "broker"
    (_broker_dir / "queue").mkdir(parents=True, exist_ok=True)
    (_broker_dir / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Longer than any task may run, so a slow task is not delivered twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=1800)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=1700)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# Periodic jobs; apps add theirs here by name (see orders/deliveries tasks).
CELERY_BEAT_SCHEDULE: dict = {}

# --- REST framework -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.tenancy.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["portal.api.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.api.errors.exception_handler",
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%S.%fZ",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Orderly API",
    "DESCRIPTION": "Multi-tenant data ordering portal (REGARDS, Content Hub and prepared "
    "delivery compatible).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "portal.api.schema.add_error_responses"],
}

# Failed logins (token endpoint, login pages) allowed per (user, client address) and, higher,
# per client address in the window; then 429 until the window ends (portal.tenancy.ratelimit).
TOKEN_RATE_LIMIT_FAILURES = env.int("TOKEN_RATE_LIMIT_FAILURES", default=5)
TOKEN_RATE_LIMIT_ADDRESS_FAILURES = env.int("TOKEN_RATE_LIMIT_ADDRESS_FAILURES", default=50)
TOKEN_RATE_LIMIT_WINDOW_SECONDS = env.int("TOKEN_RATE_LIMIT_WINDOW_SECONDS", default=300)
# Behind a reverse proxy: the header it puts the client's address in (e.g. X-Forwarded-For)
# and how many trusted proxies append to it. Empty: the socket's peer address.
CLIENT_ADDRESS_HEADER = env.str("CLIENT_ADDRESS_HEADER", default="")
CLIENT_ADDRESS_PROXIES = env.int("CLIENT_ADDRESS_PROXIES", default=1)
# Lifetime of a bearer token issued by the token endpoint or issue_token.
API_TOKEN_LIFETIME_SECONDS = env.int("API_TOKEN_LIFETIME_SECONDS", default=30 * 24 * 3600)

CACHES = {
    "default": env.cache_url("CACHE_URL", default="locmemcache://")
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "portal.logs.RedactSecretsFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact_secrets"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# --- Catalog (portal.catalog) -----------------------------------------------------------
# Object storage by URL (scale-out: nodes share no disk), e.g.
# s3://bucket/prefix?endpoint_url=https://minio:9000&region=eu-west-1 (credentials from the
# standard AWS_* variables). Empty: local disk under ORDERLY_DATA_DIR (the embedded default).
ONLINE_STORAGE_URL = env.str("ORDERLY_ONLINE_STORAGE_URL", default="")
NEARLINE_STORAGE_URL = env.str("ORDERLY_NEARLINE_STORAGE_URL", default="")
# The order cache (restored NEARLINE files, zip resume manifests), the delivery cache and the
# generated delivery signing key, under order-cache/, delivery-cache/ and keys/.
CACHE_STORAGE_URL = env.str("ORDERLY_CACHE_STORAGE_URL", default="")

# --- Orders (orders app) ----------------------------------------------------------------
# A STAGING sub-order whose worker has not reported for this long is dispatched again.
ORDER_STAGING_STALE_SECONDS = env.int("ORDER_STAGING_STALE_SECONDS", default=300)
# How often beat looks for such sub-orders (and for builds whose task was lost, e.g. with Redis).
ORDER_STUCK_SWEEP_SECONDS = env.float("ORDER_STUCK_SWEEP_SECONDS", default=120.0)
CELERY_BEAT_SCHEDULE.update({
    "orders-expire": {"task": "orders.expire_sweep", "schedule": 300.0},
    "orders-stuck-staging": {"task": "orders.stuck_sweep", "schedule": ORDER_STUCK_SWEEP_SECONDS},
    # Mail + `order.expiring` event a day before an order with files not downloaded expires.
    "orders-expiring": {"task": "orders.expiring_sweep", "schedule": 300.0},
    # Weekday mornings (the task also checks the weekday itself).
    "orders-reminders": {"task": "orders.remind_sweep",
                         "schedule": crontab(minute=0, hour=8, day_of_week="mon-fri")},
})
# One OpenAPI name per order choice set (used by several serializers).
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update({
    "OrderStatusEnum": "orders.models.OrderStatus",
    "OrderSearchModeEnum": ["INCLUDE", "EXCLUDE"],
})

# --- Deliveries (deliveries app) --------------------------------------------------------
# The Ed25519 key that signs delivery artifacts: its PEM text (DELIVERY_SIGNING_KEY_PEM, for
# nodes that share no disk), or a PEM file (DELIVERY_SIGNING_KEY); neither: made once in the
# cache storage (keys/ under ORDERLY_CACHE_STORAGE_URL) or the data dir.
DELIVERY_SIGNING_KEY_PEM = env.str("DELIVERY_SIGNING_KEY_PEM", default="", multiline=True)
DELIVERY_SIGNING_KEY = env.str("DELIVERY_SIGNING_KEY", default="")
# A delivery in preparation whose worker has not reported for this long is dispatched again.
DELIVERY_STALE_SECONDS = env.int("DELIVERY_STALE_SECONDS", default=600)
# Download order conversions run in this many threads per preparation (0: every core the worker has).
CONVERSION_THREADS = env.int("ORDERLY_CONVERSION_THREADS", default=0)
CELERY_BEAT_SCHEDULE.update({
    "deliveries-expire": {"task": "deliveries.expire_sweep", "schedule": 600.0},
    "deliveries-stuck": {"task": "deliveries.stuck_sweep", "schedule": 300.0},
})

# --- Pages and live order events (portal.pages, orders.live) --------------------------
# The SSE stream of an order polls this often, sends a heartbeat comment after this much
# silence, and closes after this long (EventSource reconnects) so no server thread is held forever.
ORDER_EVENTS_POLL_SECONDS = env.float("ORDER_EVENTS_POLL_SECONDS", default=1.0)
ORDER_EVENTS_HEARTBEAT_SECONDS = env.float("ORDER_EVENTS_HEARTBEAT_SECONDS", default=15.0)
ORDER_EVENTS_MAX_SECONDS = env.float("ORDER_EVENTS_MAX_SECONDS", default=600.0)
# Streams open at once per web process (each holds a thread): more get 503, the page stays static.
ORDER_EVENTS_MAX_STREAMS = env.int("ORDER_EVENTS_MAX_STREAMS", default=8)

# --- Webhooks (portal.webhooks) ---------------------------------------------------------
# Allow http:// and hosts on loopback/private/link-local networks (tests, intranets only).
WEBHOOKS_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOKS_ALLOW_PRIVATE_NETWORKS", default=False)
# Fernet keys (comma-separated, `Fernet.generate_key()`) sealing endpoints' signing secrets at
# rest: the first seals, every one opens (rotate: prepend a new key, `manage.py
# webhook_secrets_reseal`, drop the old). Empty: one key derived from SECRET_KEY.
WEBHOOK_SECRET_KEYS = env.list("WEBHOOK_SECRET_KEYS", default=[])
# Connect and read timeout of one delivery attempt.
WEBHOOKS_TIMEOUT_SECONDS = env.float("WEBHOOKS_TIMEOUT_SECONDS", default=10.0)
# Waits before each retry of a failed delivery; after the last one the endpoint is disabled.
WEBHOOKS_RETRY_DELAYS = [float(d) for d in env.list(
    "WEBHOOKS_RETRY_DELAYS", default=["5", "300", "1800", "7200", "18000", "36000"])]
# A delivery claimed by a worker that has not finished it for this long is sent again (same id).
WEBHOOKS_CLAIM_STALE_SECONDS = env.float("WEBHOOKS_CLAIM_STALE_SECONDS", default=60.0)
# Retries waiting at most this long ride on the broker (a delayed task); longer ones on beat.
WEBHOOKS_COUNTDOWN_MAX_SECONDS = 60
# The sweep leaves a message due for less than this to the task already queued for it.
WEBHOOKS_SWEEP_GRACE_SECONDS = env.float("WEBHOOKS_SWEEP_GRACE_SECONDS", default=10.0)
CELERY_BEAT_SCHEDULE.update({
    "webhooks-sweep": {"task": "webhooks.sweep", "schedule": 30.0},
})

# --- REGARDS clients (portal.tenancy) ----------------------------------------------------
# REGARDS clients send `Authorization: Basic <client:secret>` to the token endpoint. Empty: the
# header is accepted and ignored; set both to check it (a wrong or missing client is 401).
OAUTH_CLIENT_ID = env.str("OAUTH_CLIENT_ID", default="")
OAUTH_CLIENT_SECRET = env.str("OAUTH_CLIENT_SECRET", default="")

# --- manage.py serve ----------------------------------------------------------------------
# On Ctrl-C/SIGTERM, serve asks its web server and worker to stop, waits this long, then kills
# every process they started (a stuck request thread cannot keep a worker alive).
SERVE_STOP_TIMEOUT_SECONDS = env.float("SERVE_STOP_TIMEOUT_SECONDS", default=15.0)
