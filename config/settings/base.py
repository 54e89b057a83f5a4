"""Settings shared by every environment.

This is the one place that reads the environment; dev.py, test.py and
production.py only change a few values.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
# dev.py turns DEBUG on unless DJANGO_DEBUG says otherwise.
DEV_DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
# Old keys stay valid for signatures (sessions, reset links) while rotating.
SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp_webauthn",
    "django_tasks_db",
    # django-ninja: /api/v1/ and its reference page, served from its own static files (no CDN).
    "ninja",
]
LOCAL_APPS = [
    "accounts",
    "devices",
    "checklist",
    "desk",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "accounts.middleware.RequestObservationMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "accounts.net.ProxyHeaderCheckMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.OwnNotFoundPageMiddleware",
    "accounts.middleware.SessionPolicyMiddleware",
    "accounts.middleware.MFARequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "django.template.context_processors.csp",
                "accounts.context_processors.navigation",
            ],
        },
    },
    # The desk's heatmap (50 rows of eleven cells with tooltips): Django's
    # template language took 55 ms to write it; Jinja2 compiles a template to
    # Python and takes about 1. Only templates under templates/jinja2/.
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates" / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {"autoescape": True},
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DJANGO_CONN_MAX_AGE", "0")),
        # A kept connection is checked before each request reuses it.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DJANGO_DB_POOL"):
    # psycopg's connection pool, one per process; it replaces persistent
    # connections (Django refuses both at once), so CONN_MAX_AGE goes to 0.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": int(os.environ.get("DJANGO_DB_POOL_MIN", "2")),
        "max_size": int(os.environ.get("DJANGO_DB_POOL_MAX", "10")),
        # A request during an outage waits this long for a connection, then fails.
        "timeout": float(os.environ.get("DJANGO_DB_POOL_TIMEOUT", "2")),
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # An unreachable server is known in seconds, not after the OS's timeout.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", int(os.environ.get("DJANGO_DB_CONNECT_TIMEOUT", "3")))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers and the writer work side by side; IMMEDIATE transactions
    # and a busy timeout turn "database is locked" into a short wait.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "checklist:dashboard"
OTP_LOGIN_URL = "accounts:login"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Sessions: the server enforces idle and absolute limits (accounts.middleware);
# the cookie never outlives the absolute limit.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = 24 * 60 * 60
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

GATECHECK_IDLE_TIMEOUT = 60 * 60
GATECHECK_ABSOLUTE_TIMEOUT = 24 * 60 * 60
GATECHECK_PENDING_LOGIN_TIMEOUT = 10 * 60
GATECHECK_STEP_UP_WINDOW = 15 * 60
# "Trust this browser" at the code step (SECURITY.md 18): how long the code is
# skipped on that browser (the password is always asked); a desk lead's at most.
GATECHECK_TRUSTED_BROWSER_SECONDS = 30 * 24 * 60 * 60
GATECHECK_TRUSTED_BROWSER_LEAD_SECONDS = 12 * 60 * 60
# Verification links a user may ask for per GATECHECK_RATE_WINDOW.
GATECHECK_VERIFY_MAIL_LIMIT = 3
GATECHECK_SIGNUP_OPEN = env_bool("GATECHECK_SIGNUP_OPEN", True)
# Base URL for links in e-mails sent without a request (send_reminders from cron).
GATECHECK_SITE_URL = os.environ.get("GATECHECK_SITE_URL", "")
# How many reverse proxies in front of the app append to X-Forwarded-For.
# 0 means the header is ignored and REMOTE_ADDR is the client.
GATECHECK_TRUSTED_PROXY_COUNT = int(os.environ.get("GATECHECK_TRUSTED_PROXY_COUNT", "0"))
# Failed password or code attempts allowed per window, per bucket: per
# account, per username from one address, and per address.
GATECHECK_RATE_WINDOW = 15 * 60
GATECHECK_ACCOUNT_FAILURE_LIMIT = 10
GATECHECK_USER_IP_FAILURE_LIMIT = 5
GATECHECK_IP_FAILURE_LIMIT = 50
# Office networks (comma-separated CIDRs) whose addresses skip the per-address
# cap: a trading floor behind one NAT address is many people. The account and
# username+address caps still hold there.
GATECHECK_OFFICE_NETWORKS = env_list("GATECHECK_OFFICE_NETWORKS")
# Failure rows older than this are pruned (they count for a window of minutes).
GATECHECK_FAILURE_RETENTION_DAYS = int(os.environ.get("GATECHECK_FAILURE_RETENTION_DAYS", "7"))
# Finished background task results are kept this long, then pruned.
GATECHECK_TASK_RESULT_DAYS = int(os.environ.get("GATECHECK_TASK_RESULT_DAYS", "14"))
# Data lifecycle: each app's hourly task prunes its own rows past these ages,
# a batch of GATECHECK_PRUNE_BATCH rows per short transaction.
# The audit trail is kept seven years (leap days included), the usual record
# keeping of a regulated firm. PostgreSQL refuses to delete any audit row
# younger than that (accounts migration 0009: the database's own guard), so
# a shorter value is refused here; a longer one keeps rows longer.
GATECHECK_AUDIT_RETENTION_DAYS = int(os.environ.get("GATECHECK_AUDIT_RETENTION_DAYS", str(7 * 365 + 2)))
if GATECHECK_AUDIT_RETENTION_DAYS < 7 * 365 + 2:
    raise ValueError("GATECHECK_AUDIT_RETENTION_DAYS must be at least 2557 (seven years): the database never deletes a younger audit event.")
# Stored daily scores older than this are thinned to the last of each ISO
# week per trader (a trader's newest is always kept). Pages chart 90 days and
# compare with a week earlier, so every day they read stays.
GATECHECK_SNAPSHOT_THIN_DAYS = int(os.environ.get("GATECHECK_SNAPSHOT_THIN_DAYS", "400"))
# Heartbeat signals (the pings a bot sent) older than this are deleted. The
# automations page shows a bot's last five, and a bot's status reads its
# heartbeat row, not this history; a weekly bot's last five span 35 days.
GATECHECK_SIGNAL_RETENTION_DAYS = int(os.environ.get("GATECHECK_SIGNAL_RETENTION_DAYS", "400"))
# Reminder logs only deduplicate the day's reminders; kept 90 days to look at.
GATECHECK_REMINDER_RETENTION_DAYS = int(os.environ.get("GATECHECK_REMINDER_RETENTION_DAYS", "90"))
GATECHECK_PRUNE_BATCH = int(os.environ.get("GATECHECK_PRUNE_BATCH", "1000"))
GATECHECK_RESET_LIMIT = 5
# Requests one API token may make per minute; more are answered 429.
GATECHECK_API_REQUESTS_PER_MINUTE = int(os.environ.get("GATECHECK_API_REQUESTS_PER_MINUTE", "120"))
# Fernet keys that seal alert-channel URLs (accounts.channels): the first
# seals, all open; the word SECRET_KEY stands for the key derived from it,
# the default. Rotation: new key first, old key after it, `manage.py
# alert_channel rekey`, then drop the old.
GATECHECK_CHANNEL_KEYS = env_list("GATECHECK_CHANNEL_KEYS")
# Single sign-on with OpenID Connect (accounts.sso): off until the issuer
# and client are set. The amr values that count as a second factor done at
# the identity provider; a first sign-in makes an account only for an
# invited address, or (with CREATE_USERS) an address in an allowed domain.
GATECHECK_OIDC_ISSUER = os.environ.get("GATECHECK_OIDC_ISSUER", "").rstrip("/")
GATECHECK_OIDC_CLIENT_ID = os.environ.get("GATECHECK_OIDC_CLIENT_ID", "")
GATECHECK_OIDC_CLIENT_SECRET = os.environ.get("GATECHECK_OIDC_CLIENT_SECRET", "")
GATECHECK_OIDC_NAME = os.environ.get("GATECHECK_OIDC_NAME", "your firm's sign-on")
GATECHECK_OIDC_MFA_AMR = env_list("GATECHECK_OIDC_MFA_AMR") or ["mfa", "hwk", "swk", "otp"]
GATECHECK_OIDC_ALLOWED_DOMAINS = [d.lower() for d in env_list("GATECHECK_OIDC_ALLOWED_DOMAINS")]
GATECHECK_OIDC_CREATE_USERS = env_bool("GATECHECK_OIDC_CREATE_USERS", False)
# The audit feed (/api/v1/audit-events) holds back events younger than this,
# so that one whose transaction is still open cannot be skipped by a poller.
GATECHECK_AUDIT_FEED_SETTLE_SECONDS = 5
# Reset e-mails to one address per window, whoever asks.
GATECHECK_RESET_RECIPIENT_LIMIT = 3
# Readiness limits (CHECKLIST.md), in days except the drill target.
GATECHECK_LIMITS = {
    "device_days": int(os.environ.get("GATECHECK_DEVICE_DAYS", "365")),
    "recovery_days": int(os.environ.get("GATECHECK_RECOVERY_DAYS", "180")),
    "rotation_days": int(os.environ.get("GATECHECK_ROTATION_DAYS", "90")),
    "drill_days": int(os.environ.get("GATECHECK_DRILL_DAYS", "90")),
    "drill_target_minutes": int(os.environ.get("GATECHECK_DRILL_TARGET_MINUTES", "30")),
}

# Background work (e-mail, nightly scores, reminders, pruning) runs on Django's
# task framework. The default backend keeps tasks in this app's database
# (django-tasks-db; workers claim rows with SKIP LOCKED on PostgreSQL): run
# `manage.py db_worker` and the scheduler `manage.py crontask`. See the README
# for pointing the same tasks at RQ or Celery on Redis.
TASKS = {
    "default": {
        "BACKEND": os.environ.get("GATECHECK_TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}
# A larger deployment moves the same tasks to RQ on Redis with two variables
# (after `pip install django-tasks-rq`): GATECHECK_TASKS_BACKEND=
# django_tasks_rq.RQBackend and GATECHECK_REDIS_URL; workers are then
# `manage.py rqworker --job-class django_tasks_rq.Job default`.
if TASKS["default"]["BACKEND"] == "django_tasks_rq.RQBackend":
    INSTALLED_APPS += ["django_rq", "django_tasks_rq"]
    RQ_QUEUES = {"default": {"URL": os.environ.get("GATECHECK_REDIS_URL", "redis://127.0.0.1:6379/0")}}
# Background work watches itself (accounts.background). A RUNNING task whose
# worker has not beaten for RECLAIM seconds is run again; a task that keeps
# failing (or whose worker keeps dying) ends FAILED after MAX_TRIES; no task
# runs longer than TIMEOUT; no job statement on PostgreSQL longer than the
# statement timeout.
GATECHECK_TASK_RECLAIM_SECONDS = int(os.environ.get("GATECHECK_TASK_RECLAIM_SECONDS", "300"))
GATECHECK_WORKER_BEAT_SECONDS = float(os.environ.get("GATECHECK_WORKER_BEAT_SECONDS", "10"))
GATECHECK_TASK_MAX_TRIES = int(os.environ.get("GATECHECK_TASK_MAX_TRIES", "5"))
GATECHECK_TASK_TIMEOUT_SECONDS = int(os.environ.get("GATECHECK_TASK_TIMEOUT_SECONDS", "900"))
GATECHECK_JOB_STATEMENT_TIMEOUT_SECONDS = int(os.environ.get("GATECHECK_JOB_STATEMENT_TIMEOUT_SECONDS", "120"))
# /healthz fails when the per-minute sweep has not finished for this long, or
# when a task has waited to run for longer than the queue's age limit.
GATECHECK_SWEEP_MAX_LAG_SECONDS = int(os.environ.get("GATECHECK_SWEEP_MAX_LAG_SECONDS", "180"))
GATECHECK_QUEUE_MAX_AGE_SECONDS = int(os.environ.get("GATECHECK_QUEUE_MAX_AGE_SECONDS", "600"))
# After each sweep, a GET to an outside healthchecks.io-style URL.
GATECHECK_SELF_PING_URL = os.environ.get("GATECHECK_SELF_PING_URL", "")
GATECHECK_SELF_PING_TIMEOUT = 10
# /metrics answers a bearer token or a listed network, nobody else.
GATECHECK_METRICS_TOKEN = os.environ.get("GATECHECK_METRICS_TOKEN", "")
GATECHECK_METRICS_NETWORKS = env_list("GATECHECK_METRICS_NETWORKS")
GATECHECK_MAIL_RETRIES = 3

OTP_TOTP_ISSUER = "Gatecheck"
OTP_TOTP_THROTTLE_FACTOR = 1
# Keep the accepted window at one 30-second step either side: no drift learning.
OTP_TOTP_SYNC = False
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# Passkeys and security keys (django-otp-webauthn), as a second factor only:
# the password step always comes first. The relying party is the site's
# domain (credentials are bound to it for good) and the origins are the exact
# https:// addresses users visit. Browsers refuse WebAuthn on 127.0.0.1, so
# development and tests use http://localhost.
OTP_WEBAUTHN_RP_ID = os.environ.get("GATECHECK_WEBAUTHN_RP_ID", "localhost")
OTP_WEBAUTHN_RP_NAME = "Gatecheck"
OTP_WEBAUTHN_ALLOWED_ORIGINS = env_list("GATECHECK_WEBAUTHN_ORIGINS", "http://localhost:8000")
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Email: SMTP configured from the environment, console in development.
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "Gatecheck <noreply@localhost>")
MAILERS = {
    "default": {
        "BACKEND": os.environ.get("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend"),
        "OPTIONS": {
            key: value
            for key, value in {
                "host": os.environ.get("DJANGO_EMAIL_HOST"),
                "port": int(os.environ["DJANGO_EMAIL_PORT"]) if os.environ.get("DJANGO_EMAIL_PORT") else None,
                "username": os.environ.get("DJANGO_EMAIL_USER"),
                "password": os.environ.get("DJANGO_EMAIL_PASSWORD"),
                "use_tls": env_bool("DJANGO_EMAIL_USE_TLS", False) or None,
                # A mail server that accepts and never answers costs a worker
                # this many seconds per connect or read, not forever.
                "timeout": float(os.environ.get("DJANGO_EMAIL_TIMEOUT", "10")),
            }.items()
            if value is not None
        },
    }
}

# Security headers. The CSP allows no inline script or style anywhere.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_BEHIND_TLS_PROXY") else None
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
# What production.py applies, with production's own defaults: read here,
# since this module is the one place that reads the environment.
PRODUCTION_DEFAULTS = {
    "SECURE_SSL_REDIRECT": env_bool("DJANGO_SSL_REDIRECT", True),
    "SECURE_HSTS_SECONDS": int(os.environ.get("DJANGO_HSTS_SECONDS", str(365 * 24 * 60 * 60))),
    "SECURE_HSTS_PRELOAD": env_bool("DJANGO_HSTS_PRELOAD", True),
    "GATECHECK_SIGNUP_OPEN": env_bool("GATECHECK_SIGNUP_OPEN", False),
    "LOG_FORMAT": os.environ.get("GATECHECK_LOG_FORMAT", "json"),
}

# Production logs one JSON object a line (accounts.logs), with the request id
# and the user id, secrets in URLs redacted; GATECHECK_LOG_FORMAT=text for
# plain lines.
LOG_FORMAT = os.environ.get("GATECHECK_LOG_FORMAT", "text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "accounts.logs.ContextFilter"}},
    "formatters": {"json": {"()": "accounts.logs.JsonFormatter"}, "text": {"()": "accounts.logs.TextFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["context"], "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    # apprise's debug lines spell out the URLs it posts to (channel credentials): never below WARNING.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "apscheduler": {"level": "WARNING"}, "apprise": {"level": "WARNING"}},
}
