"""Gradlab settings: one module, every knob read from the environment.

GRADLAB_ENV selects the defaults: `development` (the README's run command; SQLite
under var/, a local Redis, DEBUG on) or `production` (DEBUG off, a SECRET_KEY is
required, HTTPS-only cookies, HSTS and a strict CSP). Any variable below overrides.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from gradlab.env import (
    database_from_url,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("GRADLAB_VAR_DIR", str(BASE_DIR / "var")))
CONTENT_DIR = Path(env_str("GRADLAB_CONTENT_DIR", str(BASE_DIR / "content")))

GRADLAB_ENV = env_choice("GRADLAB_ENV", "development", ("development", "production"))
PRODUCTION = GRADLAB_ENV == "production"
DEBUG = env_bool("DEBUG", not PRODUCTION)


# Placeholders shipped in .env.example and the docs: a deployment that copies one is refused.
PLACEHOLDER_MARKERS = ("change-me", "changeme", "django-insecure")
MIN_SECRET_KEY_LENGTH = 50


def production_secret_key_problem(key: str) -> str | None:
    """Why `key` must not sign production sessions, in one line; None when it may."""
    if not key:
        return "SECRET_KEY must be set when GRADLAB_ENV=production"
    if any(marker in key.lower() for marker in PLACEHOLDER_MARKERS):
        return "SECRET_KEY is the placeholder from .env.example: generate one (see docs/deployment.md)"
    if len(key) < MIN_SECRET_KEY_LENGTH:
        return f"SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters in production (it has {len(key)})"
    return None


def _secret_key() -> str:
    key = env_str("SECRET_KEY", "")
    if PRODUCTION:
        problem = production_secret_key_problem(key)
        if problem:
            raise ImproperlyConfigured(problem)
        return key
    if key:
        return key
    # Development: a random key kept in var/ so sessions survive restarts.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"])


def production_hosts_problem(hosts: list[str]) -> str | None:
    """Why ALLOWED_HOSTS must not be used in production, in one line; None when it may."""
    if any("*" in host for host in hosts):
        return "ALLOWED_HOSTS must name the site's host names in production, not '*' (it lets forged Host headers in)"
    return None


if PRODUCTION and (_hosts_problem := production_hosts_problem(ALLOWED_HOSTS)):
    raise ImproperlyConfigured(_hosts_problem)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "ninja",  # its templates and static files: /api/docs served from this origin, no CDN
    "axes",
    "gradlab",
    "lessons",
    "quizzes",
    "grader",
    "dashboard",
    "contentsync",
    "courses",
    "lti",
]

MIDDLEWARE = [
    "gradlab.middleware.TrustedProxyMiddleware",
    "gradlab.middleware.HealthCheckMiddleware",
    "dashboard.metrics.MetricsMiddleware",
    "gradlab.middleware.RequestLimitsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "gradlab.middleware.ContentSecurityPolicyMiddleware",
    # Inside the CSP middleware: LTI pages get frame-ancestors of the registered LMSs (lti/middleware.py).
    "lti.middleware.LtiEmbedMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "gradlab.urls"
WSGI_APPLICATION = "gradlab.wsgi.application"
ASGI_APPLICATION = "gradlab.asgi.application"

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

DATABASES = {
    "default": database_from_url(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'gradlab.sqlite3'}".replace("sqlite:///", "sqlite:////", 1)),
        base_dir=BASE_DIR,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several processes (web, worker, beat) share the file: wait for locks, don't fail.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    # Tests use a file (one per test process), not memory: the Celery worker that the
    # integration tests start must see the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"gradlab-test-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # First: refuses to authenticate at all while the account or the address is locked out.
    "gradlab.accounts.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Security -------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if env_bool("SECURE_PROXY_SSL_HEADER", PRODUCTION):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Addresses (or networks) of the reverse proxy. Only a request from one of them may say it came
# over HTTPS (X-Forwarded-Proto) and for whom (X-Forwarded-For); anyone else's X-Forwarded-*
# headers are dropped by gradlab.middleware.TrustedProxyMiddleware before anything reads them.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", ["127.0.0.1/32", "::1/128"])
X_FRAME_OPTIONS = "DENY"
# Every asset is served from this origin: no CDN, no inline script.
CONTENT_SECURITY_POLICY = env_str(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)

# --- Email (password resets) ------------------------------------------------------
# Development prints emails on the console; production sends them over SMTP.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 587 if PRODUCTION else 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", PRODUCTION)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Gradlab <no-reply@localhost>")
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be on")

# --- Redis and Celery -----------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
GRADING_QUEUE = env_str("GRADING_QUEUE", "grading")
# Hard limit of one grading task; the broker's visibility timeout sits just above it.
GRADING_SOFT_TIME_LIMIT_S = env_int("GRADING_SOFT_TIME_LIMIT_S", 60, minimum=1)
GRADING_HARD_TIME_LIMIT_S = env_int("GRADING_HARD_TIME_LIMIT_S", 75, minimum=2)
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = GRADING_SOFT_TIME_LIMIT_S
CELERY_TASK_TIME_LIMIT = GRADING_HARD_TIME_LIMIT_S
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": GRADING_HARD_TIME_LIMIT_S + 15}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = False
# The sweeper finds submissions whose wake-up message was lost (grader/services.py, submission_sweep).
GRADER_SWEEP_INTERVAL_S = env_int("GRADER_SWEEP_INTERVAL_S", 30, minimum=1)
GRADER_REQUEUE_AFTER_S = env_int("GRADER_REQUEUE_AFTER_S", 60, minimum=1)
GRADER_RUNNING_GRACE_S = env_int("GRADER_RUNNING_GRACE_S", 30, minimum=0)
GRADER_MAX_CLAIMS = env_int("GRADER_MAX_CLAIMS", 3, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "sweep-submissions": {
        "task": "grader.tasks.sweep_submissions",
        "schedule": float(GRADER_SWEEP_INTERVAL_S),
        "options": {"queue": GRADING_QUEUE, "expires": float(GRADER_SWEEP_INTERVAL_S)},
    },
    # Regrades (courses/regrades.py, regrade_sweep) recover the same way.
    "sweep-regrades": {
        "task": "courses.tasks.sweep_regrades",
        "schedule": float(GRADER_SWEEP_INTERVAL_S),
        "options": {"queue": GRADING_QUEUE, "expires": float(GRADER_SWEEP_INTERVAL_S)},
    },
}

# --- LTI 1.3 (lti/) ----------------------------------------------------------------
# Scores to an LMS: retry after base * 2^(attempt-1) seconds, never more than the cap; the
# sweeper re-sends what is due (and rows a crashed worker left "sending" after the stale time).
LTI_SCORE_RETRY_BASE_S = env_int("LTI_SCORE_RETRY_BASE_S", 10, minimum=1)
LTI_SCORE_RETRY_CAP_S = env_int("LTI_SCORE_RETRY_CAP_S", 3600, minimum=1)
LTI_SCORE_MAX_RETRIES = env_int("LTI_SCORE_MAX_RETRIES", 20, minimum=0)
LTI_SENDING_STALE_S = env_int("LTI_SENDING_STALE_S", 300, minimum=30)
LTI_RECONCILE_WINDOW_S = env_int("LTI_RECONCILE_WINDOW_S", 6 * 3600, minimum=60)
LTI_SWEEP_INTERVAL_S = env_int("LTI_SWEEP_INTERVAL_S", 60, minimum=1)
CELERY_BEAT_SCHEDULE["sweep-lti-outbox"] = {
    "task": "lti.tasks.sweep_outbox",
    "schedule": float(LTI_SWEEP_INTERVAL_S),
    "options": {"queue": GRADING_QUEUE, "expires": float(LTI_SWEEP_INTERVAL_S)},
}

# --- Grader ---------------------------------------------------------------------
# Isolation levels, weakest first; production refuses to grade below its minimum.
GRADER_ISOLATION_LEVELS = ("none", "process", "namespaces", "namespaces+seccomp")
# The full sandbox wherever bubblewrap is installed (development included): a grader that cannot
# reach it refuses to grade instead of silently running learner code with less isolation.
GRADER_MIN_ISOLATION = env_choice(
    "GRADER_MIN_ISOLATION",
    "namespaces+seccomp" if PRODUCTION or os.access("/usr/bin/bwrap", os.X_OK) else "none",
    GRADER_ISOLATION_LEVELS,
)
GRADER_MAX_SOURCE_BYTES = env_int("GRADER_MAX_SOURCE_BYTES", 64 * 1024, minimum=1024)
# Bodies up to this size are read, so a pasted file of a few MB gets the grader's own message
# about its size; anything larger gets the 400 page of gradlab/errors.py.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int(
    "DATA_UPLOAD_MAX_MEMORY_SIZE", 8 * 1024 * 1024, minimum=GRADER_MAX_SOURCE_BYTES * 2
)
GRADER_SUBMISSIONS_PER_MINUTE = env_int("GRADER_SUBMISSIONS_PER_MINUTE", 20, minimum=1)
# "Run on an example" (grader/example_services.py) has a limit of its own: runs are not submissions.
GRADER_EXAMPLE_RUNS_PER_MINUTE = env_int("GRADER_EXAMPLE_RUNS_PER_MINUTE", 30, minimum=1)
# Query-string and form fields per request; more gets a 400 (gradlab/middleware.py, RequestLimitsMiddleware).
DATA_UPLOAD_MAX_NUMBER_FIELDS = env_int("DATA_UPLOAD_MAX_NUMBER_FIELDS", 1000, minimum=10)
GRADER_WALL_TIME_FACTOR = env_float("GRADER_WALL_TIME_FACTOR", 1.0)

# --- Abuse limits ---------------------------------------------------------------
# Shared by every web process (Redis in production): sign-up throttling counts here.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "gradlab"}
        if env_bool("GRADLAB_REDIS_CACHE", PRODUCTION)
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# API tokens stop working this many days after they are made (`manage.py api_token --days` overrides).
API_TOKEN_DAYS = env_int("API_TOKEN_DAYS", 90, minimum=1)
SIGNUPS_PER_IP_PER_HOUR = env_int("SIGNUPS_PER_IP_PER_HOUR", 10, minimum=1)
# Log-in throttling (django-axes): an account, or an address, that fails this many times in a row is
# locked for AXES_COOLOFF_MINUTES; staff unlock it sooner (admin "Access attempts", or
# `manage.py axes_reset_username NAME` / `axes_reset_ip ADDRESS`).
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_MINUTES = env_int("AXES_COOLOFF_MINUTES", 15, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]  # either one locks: per address and per account
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "gradlab.accounts.locked_out"
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]  # TrustedProxyMiddleware has set it from the proxy
AXES_VERBOSE = False

# --- Metrics ----------------------------------------------------------------------
# /metrics answers requests from these networks, or with `Authorization: Bearer <METRICS_TOKEN>`.
METRICS_ALLOWED_NETWORKS = env_list(
    "METRICS_ALLOWED_NETWORKS",
    ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
)
METRICS_TOKEN = env_str("METRICS_TOKEN", "")

# --- Logs ---------------------------------------------------------------------------
# `json` (one object a line, production's default) or `plain`.
LOG_FORMAT = env_choice("LOG_FORMAT", "json" if PRODUCTION else "plain", ("json", "plain"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "gradlab.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
# The worker and beat log through LOGGING too (Celery would otherwise install its own format).
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT == "plain"

# --- Content --------------------------------------------------------------------
# Loaders run in this order by `manage.py import_content` (see contentsync/files.py).
CONTENT_LOADERS = [
    "lessons.content.load_lessons",
    "quizzes.content.load_quizzes",
    "grader.content.load_exercises",
    # Last: keeps the text of each file read, for `manage.py export_content` (contentsync/export.py).
    "contentsync.export.record_sources",
]
# Writers run in this order by `manage.py export_content` (see contentsync/export.py).
CONTENT_EXPORTERS = [
    "lessons.export.export_lessons",
    "quizzes.export.export_quizzes",
    "grader.export.export_exercises",
]
