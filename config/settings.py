"""Kontera settings: one django-environ ``env``; every external address and secret comes from it."""

from __future__ import annotations

import datetime
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from .logs import logging_config
from .sentry import init_sentry

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env (written by `manage.py run` on first start) is read when present; real
# environment variables win over it.
if (BASE_DIR / ".env").exists():
    env.read_env(str(BASE_DIR / ".env"), overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="insecure-development-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# A previous SECRET_KEY kept for a while: sessions and password-reset links stay valid, and secrets
# encrypted with a key derived from it stay readable (decrypt only) until `rotate_secrets`.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

# HTTPS (README "Run in production"): off for local use, on behind the TLS proxy in production.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^health/$"]  # a load balancer may probe over plain HTTP
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
# e.g. "HTTP_X_FORWARDED_PROTO,https": trust the proxy's header saying the request came over HTTPS.
# Set it only behind a proxy that always sets (or strips) that header.
_proxy_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_header:
    if len(_proxy_header) != 2:
        raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER is 'HEADER,value', e.g. HTTP_X_FORWARDED_PROTO,https")
    SECURE_PROXY_SSL_HEADER = (_proxy_header[0], _proxy_header[1])
USE_X_FORWARDED_HOST = env.bool("USE_X_FORWARDED_HOST", default=False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "import_export",
    "axes",
    "rangefilter",
    # Texts stored as a code with parameters, translated when shown (and makemessages for them).
    "wording",
    # The shared ledger core and the connectors.
    "bookkeeping",
    "integrations",
    # One app per flow, the same layout inside each.
    "ledger_journals",
    "expense_documents",
    "card_payments",
    # The local demo: `manage.py run` and `manage.py demo`.
    "demo",
    # Running in production: the cache table, retention, key checks, error reporting.
    "operations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files straight from gunicorn, compressed and cached (https://whitenoise.readthedocs.io/).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "bookkeeping.middleware.RememberLanguage",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'kontera.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock when a transaction starts, so two workers cannot both read
    # a refresh token or a rate-limit slot before either writes it (SQLite has no row locks).
    # WAL lets the web server read while a worker writes, and commits without a full fsync each time.
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "transaction_mode": "IMMEDIATE", "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    })
else:
    # Keep connections open: django-q2's ORM broker polls constantly (see STYLE.md's figures).
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("sv", _("Swedish")), ("da", _("Danish"))]
LOCALE_PATHS = [BASE_DIR / "bookkeeping" / "locale"]
TIME_ZONE = env("TIME_ZONE", default="Europe/Stockholm")
USE_I18N = True
# Amounts are grouped where Kontera formats them (wording.amount); config/formats sets Danish to 1 234,50.
FORMAT_MODULE_PATH = ["config.formats"]
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "var" / "static")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # `collectstatic` writes hashed, compressed copies; whitenoise serves them with far-future caching.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "var" / "media")

LOGIN_URL = "admin:login"

# E-mail: console backend unless EMAIL_URL says otherwise (smtp://user:pass@host:587 …).
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="kontera@localhost")
KONTERA_SUPPORT_EMAIL = env("KONTERA_SUPPORT_EMAIL", default="support@localhost")

# Secrets at rest: comma-separated Fernet keys; the first encrypts, all decrypt (rotation).
KONTERA_ENCRYPTION_KEYS = env.list("KONTERA_ENCRYPTION_KEYS", default=[])

# The external services; each defaults to the real one.
FORTNOX_API_URL = env("FORTNOX_API_URL", default="https://api.fortnox.se/3")
FORTNOX_OAUTH_URL = env("FORTNOX_OAUTH_URL", default="https://apps.fortnox.se/oauth-v1")
FORTNOX_CLIENT_ID = env("FORTNOX_CLIENT_ID", default="")
FORTNOX_CLIENT_SECRET = env("FORTNOX_CLIENT_SECRET", default="")
FORTNOX_REDIRECT_URI = env(
    "FORTNOX_REDIRECT_URI", default="http://127.0.0.1:8000/integrations/fortnox/callback"
)
DINERO_API_URL = env("DINERO_API_URL", default="https://api.dinero.dk")
# Dinero's personal integration (a company's own Dinero, API key + password grant): its own client.
DINERO_AUTH_URL = env("DINERO_AUTH_URL", default="https://authz.dinero.dk/dineroapi/oauth/token")
DINERO_CLIENT_ID = env("DINERO_CLIENT_ID", default="")
DINERO_CLIENT_SECRET = env("DINERO_CLIENT_SECRET", default="")
# Visma Connect: how a bureau connects its clients' Dinero organisations (a public "web application";
# developer.dinero.dk/documentation/getting-started, docs.connect.visma.com server-side web applications).
VISMA_CONNECT_AUTHORIZE_URL = env("VISMA_CONNECT_AUTHORIZE_URL", default="https://connect.visma.com/connect/authorize")
VISMA_CONNECT_TOKEN_URL = env("VISMA_CONNECT_TOKEN_URL", default="https://connect.visma.com/connect/token")
VISMA_CONNECT_CLIENT_ID = env("VISMA_CONNECT_CLIENT_ID", default="")
VISMA_CONNECT_CLIENT_SECRET = env("VISMA_CONNECT_CLIENT_SECRET", default="")
VISMA_CONNECT_REDIRECT_URI = env(
    "VISMA_CONNECT_REDIRECT_URI", default="http://127.0.0.1:8000/integrations/dinero/callback"
)
NETS_EASY_API_URL = env("NETS_EASY_API_URL", default="https://api.dibspayment.eu")

# Outbound HTTP: connect and read timeouts in seconds.
KONTERA_HTTP_TIMEOUT = (env.float("HTTP_CONNECT_TIMEOUT", default=5.0), env.float("HTTP_READ_TIMEOUT", default=30.0))

REDIS_URL = env("REDIS_URL", default="")

# Background work (django-q2). `timeout` < `retry` so a running task is never handed out twice;
# retries with back-off belong to the voucher state machine, not to the broker.
Q_CLUSTER = {
    "name": "kontera",
    "workers": env.int("KONTERA_WORKERS", default=2),
    "timeout": 300,
    "retry": 360,
    "max_attempts": 1,
    "ack_failures": True,
    # A node takes a task from the broker only when it has room (operations/qcluster.py bounds the
    # pusher to this): the rest waits there for whichever node is free.
    "queue_limit": 1,
    # A process that leaves the cluster makes the supervisor restart it whole (operations/supervisor.py);
    # recycling workers every few hundred tasks would do that for nothing.
    "recycle": 100_000,
    "catch_up": False,
    "save_limit": 500,
    "label": _("Background tasks"),  # the task-queue tables in the admin, translated
}
# Dispatch leases (bookkeeping/services/dispatchers.py): one dispatcher per company at a time; a lease
# lapses this many seconds after its holder stopped renewing it (a killed worker's companies are taken
# over then), and a voucher left in 'sending' without a lease is queued again to be looked up first.
KONTERA_DISPATCH_LEASE_SECONDS = env.int("KONTERA_DISPATCH_LEASE_SECONDS", default=20)
# Companies one dispatcher sends for at once, each at its own pace, and the threads their batches' posts
# run in (bookkeeping/services/send_batches.py). The dispatcher claims and records in its own thread: a
# posting thread opens a database connection only for a voucher the single path takes, and closes it
# after. SQLite lets one writer in at a time: a few threads there. 0 threads posts in the dispatcher itself.
KONTERA_COMPANIES_IN_FLIGHT = env.int("KONTERA_COMPANIES_IN_FLIGHT", default=64)
KONTERA_SEND_THREADS = env.int(
    "KONTERA_SEND_THREADS", default=4 if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" else 64)
# Of those threads, how many may use the database at once: posts paced per request (a Dinero document is
# several requests) and vouchers the single path takes. Each holds a connection while it works, so
# PostgreSQL's max_connections must allow nodes × workers × (this + 3) besides the web app.
KONTERA_SEND_DATABASE_THREADS = env.int("KONTERA_SEND_DATABASE_THREADS", default=30)
# Worker heartbeat (operations/heartbeat.py): a node silent this long is dead, a cluster that did
# nothing this long while work waits is frozen (/health/ answers 503, the overview shows it red);
# a node silent for KONTERA_HEARTBEAT_FORGET_MINUTES is taken as removed.
KONTERA_HEARTBEAT_STALE_SECONDS = env.int("KONTERA_HEARTBEAT_STALE_SECONDS", default=60)
KONTERA_HEARTBEAT_FORGET_MINUTES = env.int("KONTERA_HEARTBEAT_FORGET_MINUTES", default=15)
KONTERA_FROZEN_AFTER_SECONDS = env.int("KONTERA_FROZEN_AFTER_SECONDS", default=60)

if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # Shared by every process (web, workers on any machine): dispatch tickets live here. `migrate`
    # creates the table (operations/migrations/0001_cache_table.py).
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "kontera_cache"}}

# Logs: plain text by default (what `run` shows), one JSON object per line with LOG_FORMAT=json.
LOG_FORMAT = env("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured("LOG_FORMAT is 'plain' or 'json'.")
LOGGING = logging_config(log_format=LOG_FORMAT, level=env("LOG_LEVEL", default="INFO"))
LOGGING["loggers"]["axes"] = {"level": "WARNING"}  # every login otherwise logs three lines

# Error tracking (optional): errors of the web app and of background tasks go to Sentry.
SENTRY_DSN = env("SENTRY_DSN", default="")
init_sentry(dsn=SENTRY_DSN, environment=env("SENTRY_ENVIRONMENT", default=""),
            release=env("SENTRY_RELEASE", default=""),
            traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0))

# Retention (operations/retention.py, run daily by the scheduler). Technical rows go after the given
# number of days; the bookkeeping audit trail is kept at least as long as the accounting law asks
# (Sweden 7 years, Denmark 5, counted from the end of the year; never less, whatever is set here).
KONTERA_RETENTION = {
    "task_successes_days": env.int("RETENTION_TASK_SUCCESSES_DAYS", default=14),
    "task_failures_days": env.int("RETENTION_TASK_FAILURES_DAYS", default=90),
    "oauth_states_days": env.int("RETENTION_OAUTH_STATES_DAYS", default=7),
    "rate_limit_rows_days": env.int("RETENTION_RATE_LIMIT_ROWS_DAYS", default=30),
    "technical_audit_days": env.int("RETENTION_TECHNICAL_AUDIT_DAYS", default=180),
    "bookkeeping_audit_years_se": env.int("RETENTION_AUDIT_YEARS_SE", default=7),
    "bookkeeping_audit_years_dk": env.int("RETENTION_AUDIT_YEARS_DK", default=5),
}

# django-import-export: an import needs the model's "import" permission, an export its "export"
# permission; everything in one transaction; files wait in the upload folder (cleaned on a schedule).
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "import"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "export"
IMPORT_EXPORT_TMP_STORAGE_CLASS = "bookkeeping.admin.uploads.UploadFolderStorage"
IMPORT_EXPORT_USE_TRANSACTIONS = True
IMPORT_EXPORT_SKIP_ADMIN_LOG = False

# Uploads: the most each kind of import takes, checked before the file is read (megabytes), where
# files wait between preview and confirmation, and after how long an abandoned one is deleted.
_MB = 1024 * 1024
KONTERA_UPLOAD_LIMITS = {
    "journals": env.int("KONTERA_MAX_UPLOAD_JOURNALS_MB", default=20) * _MB,
    "documents": env.int("KONTERA_MAX_UPLOAD_DOCUMENTS_MB", default=2) * _MB,
    "mappings": env.int("KONTERA_MAX_UPLOAD_MAPPINGS_MB", default=10) * _MB,
    # Dinero takes files of at most 6 MB (developer.dinero.dk error page); more is refused anyway.
    "attachments": min(env.int("KONTERA_MAX_UPLOAD_ATTACHMENTS_MB", default=6), 6) * _MB,
}
KONTERA_UPLOAD_DIR = env.path("KONTERA_UPLOAD_DIR", default=BASE_DIR / "var" / "uploads")
# A confirmed journal file larger than this is imported by a worker, with a page that shows how it goes
# (a web request would time out on 100,000 rows); smaller ones are imported in the request.
KONTERA_JOURNAL_IMPORT_IN_WORKER_BYTES = env.int("KONTERA_JOURNAL_IMPORT_IN_WORKER_KB", default=512) * 1024
KONTERA_UPLOAD_MAX_AGE_MINUTES = env.int("KONTERA_UPLOAD_MAX_AGE_MINUTES", default=120)

# Sessions: signed out after this many minutes without a request (the admin holds client books).
SESSION_COOKIE_AGE = env.int("KONTERA_SESSION_TIMEOUT_MINUTES", default=8 * 60) * 60
SESSION_SAVE_EVERY_REQUEST = True  # the timeout counts from the last request, not from the login

# Login throttling (django-axes, https://django-axes.readthedocs.io/): after AXES_FAILURE_LIMIT failed
# logins for one username from one address, that pair is locked out for AXES_COOLOFF_MINUTES.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "config.error_pages.locked_out"
AXES_VERBOSE = False
