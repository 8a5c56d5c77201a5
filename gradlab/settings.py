"""Gradlab settings: one module, every knob read from the environment.

GRADLAB_ENV selects the defaults: `development` (the README's run command; SQLite
under var/, a local Redis, DEBUG on) or `production` (DEBUG off, a SECRET_KEY is
required, HTTPS-only cookies, HSTS and a strict CSP). Any variable below overrides.
"""

from __future__ import annotations

import os
import secrets
import tempfile
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


def _secret_key() -> str:
    key = env_str("SECRET_KEY", "")
    if key:
        if PRODUCTION and len(key) < 50:
            raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters in production")
        return key
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when GRADLAB_ENV=production")
    # Development: a random key kept in var/ so sessions survive restarts.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"])
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
    "gradlab",
    "quizzes",
    "grader",
    "dashboard",
]

MIDDLEWARE = [
    "gradlab.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "gradlab.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
X_FRAME_OPTIONS = "DENY"
# Every asset is served from this origin: no CDN, no inline script.
CONTENT_SECURITY_POLICY = env_str(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)

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
}

# --- Grader ---------------------------------------------------------------------
# Isolation levels, weakest first; production refuses to grade below its minimum.
GRADER_ISOLATION_LEVELS = ("none", "process", "namespaces", "namespaces+seccomp")
GRADER_MIN_ISOLATION = env_choice(
    "GRADER_MIN_ISOLATION", "namespaces+seccomp" if PRODUCTION else "none", GRADER_ISOLATION_LEVELS
)
GRADER_MAX_SOURCE_BYTES = env_int("GRADER_MAX_SOURCE_BYTES", 64 * 1024, minimum=1024)
# Bodies up to this size are read, so a pasted file of a few MB gets the grader's own message
# about its size; anything larger gets the 400 page of gradlab/errors.py.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int(
    "DATA_UPLOAD_MAX_MEMORY_SIZE", 8 * 1024 * 1024, minimum=GRADER_MAX_SOURCE_BYTES * 2
)
GRADER_SUBMISSIONS_PER_MINUTE = env_int("GRADER_SUBMISSIONS_PER_MINUTE", 20, minimum=1)
GRADER_WALL_TIME_FACTOR = env_float("GRADER_WALL_TIME_FACTOR", 1.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Content --------------------------------------------------------------------
# Loaders run in this order by `manage.py import_content` (see gradlab/contentio.py).
CONTENT_LOADERS = [
    "quizzes.content.load_lessons",
    "quizzes.quiz_content.load_quizzes",
    "grader.content.load_exercises",
    # Last: keeps the text of each file read, for `manage.py export_content` (gradlab/contentexport.py).
    "gradlab.contentexport.record_sources",
]
