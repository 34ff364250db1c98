"""Concernline settings: one module, every value from the environment.

See README, "Configuration". The defaults are the embedded ones `make run` uses: SQLite under
var/, Celery over kombu's filesystem transport, SMS to the console. Production sets DATABASE_URL,
CELERY_BROKER_URL and the Twilio values.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be 1/0, true/false, yes/no or on/off, not {value!r}.")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = "dev-only-concernline-key-never-used-in-production-0123456789abcdef"
# Without DEBUG an unset SECRET_KEY stays empty: commands that sign nothing (makemigrations)
# still run, anything that would sign fails in Django itself ("The SECRET_KEY setting must
# not be empty"), and the deploy check config.E001 says how to fix it.

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

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
    "phonenumber_field",
    "axes",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "staff",
    "notifications",
    "oncall",
    "incidents",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "staff.language.PreferredLanguageMiddleware",
    "staff.ratelimit.RateLimitMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Outside the idle sign-out, so it sees that redirect too.
    "staff.security.SignedOutSendMiddleware",
    "staff.security.IdleSignOutMiddleware",
    "staff.security.SecondFactorRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "staff.security.PermissionsPolicyMiddleware",
    # Last, so it sees the outcome of every sign-in attempt.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
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
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'concernline.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        # A kept connection PostgreSQL has since ended (a restart, an idle timeout) is found
        # with one cheap query when a task or request first uses it and replaced, rather than
        # failing that task: an escalation step is not retried.
        conn_health_checks=env_int("DATABASE_CONN_MAX_AGE", 0) > 0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Parameters sent apart from the SQL (not quoted into it by psycopg), so PostgreSQL can keep
    # each statement a connection runs often prepared: parsed and planned once, not per report.
    # DATABASE_PREPARE_THRESHOLD=0 turns preparing off (behind a pooler in transaction mode).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "server_side_binding": True,
            "prepare_threshold": env_int("DATABASE_PREPARE_THRESHOLD", 5) or None,
        }
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the worker and beat share the file. Each transaction takes the write lock
    # when it begins (IMMEDIATE), so a busy database makes it wait up to `timeout` instead of
    # failing with "database is locked" when a read would turn into a write; WAL lets pages be
    # read while the worker writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "staff.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "incidents:home"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
LANGUAGES = [("en", _("English")), ("cy", _("Welsh"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/London"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", DEBUG)

# Security. TLS terminates in front of the app; the app still insists on it outside DEBUG.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"
)
# No inline script or style anywhere: everything comes from our own static files.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Sessions: a browser session on a shared phone ends with the browser or after a working day;
# every page that shows case content, the admin and the session-authenticated API also sign out
# after SESSION_IDLE_SECONDS without activity (staff.security.IdleSignOutMiddleware).
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_IDLE_SECONDS = env_int("SESSION_IDLE_SECONDS", 30 * 60)
SESSION_IDLE_PROTECTED_PATHS = [
    "/cases/",
    "/my-reports/",
    "/breach-log/",
    "/outcomes/",
    "/retention/",
    "/admin/",
    "/api/",
]
SECOND_FACTOR_REQUIRED = env_bool("SECOND_FACTOR_REQUIRED", True)
OTP_TOTP_ISSUER = "Concernline"

# Sign-in throttling (django-axes): an account or an address is paused after this many failures.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "staff.security.lockout_response"
AXES_USERNAME_CALLABLE = "staff.security.attempted_username"
AXES_VERBOSE = False

# Shared counters (rate limits). Redis in production so every web process counts together.
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["CACHE_URL"],
        }
        if os.environ.get("CACHE_URL")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Requests per window, per signed-in person (or API credential) and per address.
RATE_LIMIT_WINDOW_SECONDS = env_int("RATE_LIMIT_WINDOW_SECONDS", 600)
RATE_LIMITS = {
    "report": {
        "methods": ["POST"],
        "paths": ["/report/", "/api/v1/reports/"],
        "per_person": env_int("RATE_LIMIT_REPORTS_PER_PERSON", 30),
        "per_address": env_int("RATE_LIMIT_REPORTS_PER_ADDRESS", 300),
        "window_seconds": RATE_LIMIT_WINDOW_SECONDS,
    },
    "sign_in": {
        "methods": ["POST"],
        "paths": [
            "/accounts/login/",
            "/api/v1/auth/token/",
            "/accounts/password-reset/",
            "/accounts/two-factor/",
        ],
        "per_person": env_int("RATE_LIMIT_SIGN_IN_PER_PERSON", 60),
        "per_address": env_int("RATE_LIMIT_SIGN_IN_PER_ADDRESS", 60),
        "window_seconds": RATE_LIMIT_WINDOW_SECONDS,
    },
    "api": {
        "methods": ["GET", "POST", "PUT", "PATCH", "DELETE"],
        "paths": ["/api/v1/"],
        "per_person": env_int("RATE_LIMIT_API_PER_PERSON", 600),
        "per_address": env_int("RATE_LIMIT_API_PER_ADDRESS", 2000),
        "window_seconds": RATE_LIMIT_WINDOW_SECONDS,
    },
}
# Behind N trusted proxies the client address is read from X-Forwarded-For; otherwise that
# header is ignored, so nobody can dodge the per-address limit by forging it.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
AXES_IPWARE_PROXY_COUNT = TRUSTED_PROXY_COUNT or None  # and staff.ratelimit.client_address
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if TRUSTED_PROXY_COUNT else ["REMOTE_ADDR"]
)

# Celery. The broker carries ids only, never case content.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # The embedded broker polls its folder; a tenth of a second keeps pages prompt.
        "polling_interval": 0.1,
    }
else:
    # Redis redelivers an unacknowledged task after this long; the sweeper re-drives overdue
    # alerts long before that, and the token check makes the redelivery do nothing.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "oncall.escalate_alert": {"queue": "paging"},
    "oncall.sweep_alerts": {"queue": "paging"},
    "notifications.send_notification_attempt": {"queue": "paging"},
    "notifications.sweep_notification_attempts": {"queue": "paging"},
    "notifications.advance_page": {"queue": "paging"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the task's database connection before and after every task
# unless this is set, whatever CONN_MAX_AGE says: a new connection (and PostgreSQL backend) for
# every escalation step. With DATABASE_CONN_MAX_AGE set, config.celery instead closes it as
# Django does around a request (close_old_connections: once it is older than CONN_MAX_AGE, or
# unusable after an error); the fixup's own close then comes only every 10,000th task.
if DATABASES["default"].get("CONN_MAX_AGE"):
    CELERY_DB_REUSE_MAX = 5000
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "sweep-alerts": {
        "task": "oncall.sweep_alerts",
        "schedule": float(env_int("ALERT_SWEEP_SECONDS", 5)),
    },
    "sweep-notification-attempts": {
        "task": "notifications.sweep_notification_attempts",
        "schedule": float(env_int("ALERT_SWEEP_SECONDS", 5)),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Paging.
SMS_BACKEND = os.environ.get("SMS_BACKEND", "console")
SMS_BACKENDS = {
    "console": "notifications.providers.console.ConsoleProvider",
    "twilio": "notifications.providers.twilio.TwilioProvider",
    "outbox": "notifications.providers.outbox.OutboxProvider",
}
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
# A second token accepted on webhooks while the primary is being rotated.
TWILIO_AUTH_TOKEN_SECONDARY = os.environ.get("TWILIO_AUTH_TOKEN_SECONDARY", "")
TWILIO_FROM_NUMBER = os.environ.get("TWILIO_FROM_NUMBER", "")
TWILIO_API_URL = os.environ.get("TWILIO_API_URL", "")
TWILIO_TIMEOUT_SECONDS = env_int("TWILIO_TIMEOUT_SECONDS", 10)
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

# Paging channels (notifications). Per-phone limits are "count/seconds" over a rolling window;
# the first step of an important page is never held back.
PAGING_THROTTLE_SMS = os.environ.get("PAGING_THROTTLE_SMS", "6/60")
PAGING_THROTTLE_CALL = os.environ.get("PAGING_THROTTLE_CALL", "2/120")
# An important page nobody acknowledged moves to its next step (call again) after this.
PAGING_CALL_RETRY_SECONDS = env_int("PAGING_CALL_RETRY_SECONDS", 120)
PAGING_CALL_RING_SECONDS = env_int("PAGING_CALL_RING_SECONDS", 30)
# Twilio <Say> language and voice, per recipient language.
PAGING_VOICE_LANGUAGE = {
    "en": os.environ.get("PAGING_VOICE_LANGUAGE_EN", "en-GB"),
    "cy": os.environ.get("PAGING_VOICE_LANGUAGE_CY", "cy-GB"),
}
PAGING_VOICE = {
    "en": os.environ.get("PAGING_VOICE_EN", "Polly.Amy"),
    "cy": os.environ.get("PAGING_VOICE_CY", "Polly.Gwyneth"),
}
PAGING_EMAIL_FROM = os.environ.get(
    "PAGING_EMAIL_FROM", os.environ.get("DEFAULT_FROM_EMAIL", "concernline@localhost")
)
# Messages and calls with no final status this long are asked about at the provider.
PAGING_POLL_AFTER_SECONDS = env_int("PAGING_POLL_AFTER_SECONDS", 120)
# More inbound SMS than this from one number within the window get no answer (reply loops).
PAGING_INBOUND_LIMIT = env_int("PAGING_INBOUND_LIMIT", 8)
PAGING_INBOUND_WINDOW_SECONDS = env_int("PAGING_INBOUND_WINDOW_SECONDS", 600)

# How long an unacknowledged alert waits before the on-call manager is paged again.
ALERT_REPAGE_SECONDS = env_int("ALERT_REPAGE_SECONDS", 300)
# How far past its due time an alert step may be before the sweeper runs it itself.
ALERT_SWEEP_GRACE_SECONDS = env_int("ALERT_SWEEP_GRACE_SECONDS", 10)

# Days an API token lives before its owner signs in for a new one.
API_TOKEN_DAYS = env_int("API_TOKEN_DAYS", 30)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "staff.authentication.ApiTokenAuthentication",
        "staff.authentication.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON only: one unambiguous shape for every client, and a smaller surface.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "EXCEPTION_HANDLER": "incidents.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Concernline API",
    "DESCRIPTION": "Reports from phones and integrations. Case content never leaves need-to-know.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema is public and the same for everyone: no credential is looked at to serve it
    # (a session still owing its second factor would otherwise be refused it).
    "SERVE_AUTHENTICATION": [],
    "ENUM_NAME_OVERRIDES": {"YesNoEnum": "incidents.models.YesNoUnsure.choices"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.api_schema.document_errors",
    ],
}

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "concernline@localhost")

DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "")

# Logs are JSON lines in production (LOG_FORMAT=json), plain text in development; every line
# passes config.logging.RedactFilter, so no phone number or email address is logged whole.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "config.logging.RedactFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# On-call rotas (README, "On-call rotas").
# How long before a shift starts its person is reminded by SMS and email.
ROTA_HANDOFF_REMINDER_MINUTES = env_int("ROTA_HANDOFF_REMINDER_MINUTES", 60)
# How far ahead the daily check looks for gaps in cover.
ROTA_GAP_LOOKAHEAD_DAYS = env_int("ROTA_GAP_LOOKAHEAD_DAYS", 14)
CELERY_BEAT_SCHEDULE["rota-gap-check"] = {
    "task": "oncall.warn_of_rota_gaps",
    "schedule": float(env_int("ROTA_GAP_CHECK_SECONDS", 24 * 3600)),
}
CELERY_BEAT_SCHEDULE["rota-handoff-reminders"] = {
    "task": "oncall.send_handoff_reminders",
    "schedule": 300.0,
}
# Cases: review targets, statutory clocks, break-glass and attachments (see README, "Cases").
CASE_ACKNOWLEDGE_TARGET_HOURS = float(os.environ.get("CASE_ACKNOWLEDGE_TARGET_HOURS", "24"))
CASE_REVIEW_TARGET_DAYS = float(os.environ.get("CASE_REVIEW_TARGET_DAYS", "14"))
BREACH_DECISION_HOURS = float(os.environ.get("BREACH_DECISION_HOURS", "72"))
SAFEGUARDING_REFERRAL_HOURS = float(os.environ.get("SAFEGUARDING_REFERRAL_HOURS", "24"))
CLOCK_WARN_PERCENT = env_int("CLOCK_WARN_PERCENT", 75)
CELERY_BEAT_SCHEDULE["sweep-case-clocks"] = {
    "task": "incidents.sweep_clocks",
    "schedule": float(env_int("CLOCK_SWEEP_SECONDS", 60)),
}
# Retention (README, "Retention"): the nightly purge anonymises closed cases past their rule's
# period, at RETENTION_PURGE_HOUR:15 UTC. The periods themselves are edited in the admin.
CELERY_BEAT_SCHEDULE["purge-expired-cases"] = {
    "task": "incidents.purge_expired",
    "schedule": crontab(hour=env_int("RETENTION_PURGE_HOUR", 3), minute=15),
}
BREAK_GLASS_MINUTES = env_int("BREAK_GLASS_MINUTES", 60)
ATTACHMENTS_DIR = Path(os.environ.get("ATTACHMENTS_DIR", VAR_DIR / "attachments"))
ATTACHMENT_MAX_BYTES = env_int("ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)
# Guidance (section 6) and training (section 5). Reminders go this many days before training is
# due (and once when it is overdue), from a daily beat task at TRAINING_REMINDER_HOUR UTC.
TRAINING_REMINDER_DAYS = env_list("TRAINING_REMINDER_DAYS", "14,1")
if not all(d.isdigit() for d in TRAINING_REMINDER_DAYS):
    raise ImproperlyConfigured(
        "TRAINING_REMINDER_DAYS must be whole numbers of days separated by commas, e.g. 14,1."
    )
TRAINING_REMINDER_DAYS = [int(d) for d in TRAINING_REMINDER_DAYS]
GUIDANCE_MAX_UPLOAD_BYTES = env_int("GUIDANCE_MAX_UPLOAD_BYTES", 512 * 1024)
CELERY_BEAT_SCHEDULE["staff-training-reminders"] = {
    "task": "staff.send_training_reminders",
    "schedule": crontab(hour=env_int("TRAINING_REMINDER_HOUR", 8), minute=0),
}
TEMPLATES[0]["OPTIONS"]["context_processors"].append("staff.context_processors.guidance_prompt")
# The team page lists names and questions people asked: it signs out when idle, like case pages.
SESSION_IDLE_PROTECTED_PATHS.append("/staff/team/")
SESSION_IDLE_PROTECTED_PATHS.append("/subject-access/")
# Escalation policies count in minutes; this is how many seconds a policy minute lasts
# (60 in production; tests and benchmarks compress time with a fraction of a second).
ESCALATION_MINUTE_SECONDS = float(os.environ.get("ESCALATION_MINUTE_SECONDS", "60"))
# Policy minutes an acknowledged urgent alert may wait to be taken into review before the
# acknowledger is reminded, and as long again before it re-opens (0: never).
ESCALATION_REVIEW_MINUTES = env_int("ESCALATION_REVIEW_MINUTES", 30)
# How stale the sweeper's heartbeat may be before /health/ reports 503.
HEALTH_HEARTBEAT_MAX_AGE_SECONDS = env_int("HEALTH_HEARTBEAT_MAX_AGE_SECONDS", 60)
CELERY_BEAT_SCHEDULE["check-paging-readiness"] = {
    "task": "oncall.check_paging_readiness",
    "schedule": crontab(hour=2, minute=30),
}
# Encryption at rest (config/crypto.py): report narratives and details, case notes and the
# reporter's additions, attachment files. Comma-separated Fernet keys, the current key first;
# older keys only decrypt until `manage.py rotate_keys` has re-encrypted everything.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS")
if not FIELD_ENCRYPTION_KEYS and DEBUG:
    # Development only: a key derived from SECRET_KEY. Without DEBUG there is no fallback and
    # the deploy check (incidents.C001) is critical.
    import base64
    import hashlib

    FIELD_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(
            hashlib.sha256(b"concernline-dev-field-encryption:" + SECRET_KEY.encode()).digest()
        ).decode()
    ]
