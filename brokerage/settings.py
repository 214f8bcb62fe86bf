"""Settings for the broker back-office.

Every value comes from an environment variable with a safe local default, so `make run` works on a laptop with
nothing installed but Python. `DJANGO_ENV=production` refuses to start without the secrets a real deployment needs.
The variables are listed in the README's configuration reference.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

DJANGO_ENV = env.str("DJANGO_ENV", default="local")
ENVIRONMENTS = ("local", "test", "production")
if DJANGO_ENV not in ENVIRONMENTS:
    sys.exit(f"Configuration error: DJANGO_ENV={DJANGO_ENV!r} is not one of {', '.join(ENVIRONMENTS)}.")
PRODUCTION = DJANGO_ENV == "production"

if PRODUCTION:
    # A production process must be told everything that matters; a guessed default here would be a silent outage
    # (SQLite on a web node) or a security hole (a known SECRET_KEY).
    _missing = [
        name
        for name in ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "CELERY_BROKER_URL", "EMAIL_URL")
        if not env.str(name, default="")
    ]
    if _missing:
        sys.exit(f"Configuration error: DJANGO_ENV=production needs {', '.join(_missing)} to be set.")


def _setting(name: str, reader, **kwargs):
    """Read one variable, turning a malformed value into a one-line error that names the variable."""
    try:
        return reader(name, **kwargs)
    except (ValueError, ImproperlyConfigured, KeyError) as exc:
        sys.exit(f"Configuration error: {name} is not valid ({exc}).")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _strict_bool(name: str, default: bool) -> bool:
    """environ's bool() reads any unknown word as False; a typo in DEBUG or a security flag must not pass."""
    raw = env.str(name, default=str(default)).strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"expected one of true/false/1/0/yes/no/on/off, got {raw!r}")


VAR_DIR = Path(_setting("VAR_DIR", env.str, default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = _setting("SECRET_KEY", env.str, default="local-only-insecure-key-do-not-use-in-production-7f3a9c")
DEBUG = _setting("DEBUG", _strict_bool, default=False)
ALLOWED_HOSTS = _setting("ALLOWED_HOSTS", env.list, default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = _setting("CSRF_TRUSTED_ORIGINS", env.list, default=[])
BROKER_NAME = _setting("BROKER_NAME", env.str, default="Meridian Markets")
SITE_URL = _setting("SITE_URL", env.str, default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "crm.apps.BackOfficeAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_fsm_log",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "csp",
    # The project's apps, lowest layer first (see DESIGN.md: arrows point one way).
    "core",
    "crm",
    "kyc",
    "mt5bridge",
    "payments",
    "ib",
    "analytics",
    "portal",
    "brokerage",  # the project itself, for its management commands (demo data, the run banner)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Signed provider webhooks (views marked core.webhooks.webhook_door) skip the browser-facing middleware below.
    "core.webhooks.WebhookLaneMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "crm.middleware.StaffSecondFactorMiddleware",
]

ROOT_URLCONF = "brokerage.urls"
WSGI_APPLICATION = "brokerage.wsgi.application"

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
                "core.context_processors.branding",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------------------
DATABASES = {"default": _setting("DATABASE_URL", env.db, default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file: WAL lets readers go on while one writer commits, and IMMEDIATE takes
    # the write lock at BEGIN so two writers queue instead of failing with "database is locked" mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = _setting("CONN_MAX_AGE", env.int, default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": _setting("CACHE_URL", env.cache, default=f"filecache://{VAR_DIR / 'cache'}")}

# --- Identity -------------------------------------------------------------------------------------------------
AUTH_USER_MODEL = "crm.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "portal:dashboard"

ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = False
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{BROKER_NAME}] "
ACCOUNT_SIGNUP_FORM_CLASS = "crm.forms.SignupExtraForm"
ACCOUNT_ADAPTER = "crm.adapters.AccountAdapter"
# Failed logins are throttled per IP and per account (allauth keeps the counters in the cache above).
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "confirm_email": "1/3m/key",
    "reset_password": "20/m/ip,5/m/key",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = BROKER_NAME
# Accept the code of the neighbouring 30-second step too: phones drift, and a code typed at the edge of its
# window should not bounce. Each code still works only once (allauth remembers used codes).
MFA_TOTP_TOLERANCE = 1

SESSION_COOKIE_AGE = _setting("SESSION_COOKIE_AGE", env.int, default=60 * 60 * 8)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True

# --- HTTP security --------------------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SECURE_SSL_REDIRECT = _setting("SECURE_SSL_REDIRECT", _strict_bool, default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = _setting("SECURE_HSTS_SECONDS", env.int, default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # /healthz and /readyz are probed over plain HTTP by the load balancer inside the private network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        # allauth renders the TOTP enrolment QR code as an inline data: SVG image.
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- Static and media -----------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(_setting("MEDIA_ROOT", env.str, default=str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

# --- Email ----------------------------------------------------------------------------------------------------
EMAIL_CONFIG = _setting("EMAIL_URL", env.email_url, default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = _setting("DEFAULT_FROM_EMAIL", env.str, default=f"{BROKER_NAME} <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Internationalisation -------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- REST API -------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": f"{BROKER_NAME} back-office API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery ---------------------------------------------------------------------------------------------------
CELERY_BROKER_URL = _setting("CELERY_BROKER_URL", env.str, default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded broker: messages are files under var/broker, so web, worker and beat on one machine share a
    # queue without Redis. Good for a laptop; a deployment sets CELERY_BROKER_URL to Redis or RabbitMQ.
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
if CELERY_BROKER_URL.startswith("redis://"):
    # kombu's Redis transport, publishing through a kept client (see brokerage.celery.RedisTransport). rediss:// keeps
    # kombu's own (its TLS set-up goes by the URL's scheme and was not checked with this class).
    CELERY_BROKER_TRANSPORT = "brokerage.celery:RedisTransport"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES_NAMES = ("default", "mt5", "payments", "kyc", "analytics")
# Each concern has its own queue so a slow MT5 server cannot starve payment webhooks.
CELERY_TASK_ROUTES = {
    "mt5bridge.*": {"queue": "mt5"},
    "payments.*": {"queue": "payments"},
    "kyc.*": {"queue": "kyc"},
    "analytics.*": {"queue": "analytics"},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connection around every task unless this is set: a fresh PostgreSQL
# connection (a new server process, ~5 ms) per task. With it set, brokerage.celery closes connections the way Django
# does around a web request instead (CONN_MAX_AGE, errors, health checks); the fixup still recycles them this often.
CELERY_DB_REUSE_MAX = 1000
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Periodic jobs are defined here, in code; django-celery-beat mirrors them into its tables on start.
CELERY_BEAT_SCHEDULE = {
    "crm.sessions_clear_expired": {
        "task": "crm.sessions_clear_expired",
        "schedule": crontab(hour=3, minute=17),
        "options": {"queue": "default", "expires": timedelta(hours=6).total_seconds()},
    },
    "core.webhook_events_sweep": {"task": "core.webhook_events_sweep", "schedule": 60.0},
    "payments.deposits_settle_transfers": {"task": "payments.deposits_settle_transfers", "schedule": 15.0},
    "payments.reconcile_all": {"task": "payments.reconcile_all", "schedule": crontab(hour=1, minute=30)},
    # The nightly AML run is analytics.nightly's second step (over the day tables, with trading activity).
    "kyc.kyc_cases_expire": {"task": "kyc.kyc_cases_expire", "schedule": crontab(hour=2, minute=5)},
    "mt5bridge.trade_servers_refresh": {"task": "mt5bridge.trade_servers_refresh", "schedule": 60.0},
    "mt5bridge.accounts_snapshot_sync": {"task": "mt5bridge.accounts_snapshot_sync", "schedule": 60.0},
    "mt5bridge.positions_snapshot_sync": {"task": "mt5bridge.positions_snapshot_sync", "schedule": 60.0},
    "mt5bridge.deals_import": {"task": "mt5bridge.deals_import", "schedule": 30.0},
    "mt5bridge.balance_operations_resolve_stuck": {
        "task": "mt5bridge.balance_operations_resolve_stuck",
        "schedule": 30.0,
    },
}
CELERY_TIMEZONE = "UTC"

# --- Logging --------------------------------------------------------------------------------------------------
LOG_LEVEL = _setting("LOG_LEVEL", env.str, default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- MT5 bridge -----------------------------------------------------------------------------------------------
MT5_ADAPTERS = {"webapi": "mt5bridge.adapters.webapi.WebAPIManager"}
MT5_CONNECT_TIMEOUT = _setting("MT5_CONNECT_TIMEOUT", env.float, default=3.0)
MT5_READ_TIMEOUT = _setting("MT5_READ_TIMEOUT", env.float, default=15.0)
MT5_BREAKER_THRESHOLD = _setting("MT5_BREAKER_THRESHOLD", env.int, default=5)
MT5_BREAKER_COOLDOWN = _setting("MT5_BREAKER_COOLDOWN", env.float, default=5.0)
MT5_BREAKER_COOLDOWN_MAX = _setting("MT5_BREAKER_COOLDOWN_MAX", env.float, default=300.0)
# Where `make run` starts the bundled mock trade server, and its manager password outside production.
MT5_MOCK_URL = _setting("MT5_MOCK_URL", env.str, default="http://127.0.0.1:8447")
MT5_MOCK_MANAGER_PASSWORD = "" if PRODUCTION else _setting("MT5_MOCK_PASSWORD", env.str, default="Manager#2024")
# A balance operation whose reply was lost is looked up only after this long, so a slow server can finish first.
MT5_UNKNOWN_GRACE_SECONDS = _setting("MT5_UNKNOWN_GRACE_SECONDS", env.float, default=30.0)
# Hard time limit of one send (login + request); a "sent" operation older than this plus the grace is abandoned.
MT5_SEND_TIME_LIMIT = _setting("MT5_SEND_TIME_LIMIT", env.int, default=120)
MT5_MAX_SEND_ATTEMPTS = _setting("MT5_MAX_SEND_ATTEMPTS", env.int, default=12)
MT5_MAX_BALANCE_OPERATION = Decimal(_setting("MT5_MAX_BALANCE_OPERATION", env.str, default="1000000"))
MT5_DEMO_DEPOSIT = Decimal(_setting("MT5_DEMO_DEPOSIT", env.str, default="10000"))
MT5_SNAPSHOT_BATCH = _setting("MT5_SNAPSHOT_BATCH", env.int, default=500)

# --- KYC and compliance ---------------------------------------------------------------------------------------
# Identity documents are never under MEDIA_ROOT or STATIC_ROOT: nothing serves this folder but a staff-only view.
KYC_DOCUMENT_ROOT = Path(_setting("KYC_DOCUMENT_ROOT", env.str, default=str(VAR_DIR / "private" / "kyc")))
KYC_PROVIDER = _setting("KYC_PROVIDER", env.str, default="manual")
KYC_PROVIDERS = {
    "manual": "kyc.providers.manual.ManualProvider",
    "sumsub": "kyc.providers.sumsub.SumsubProvider",
}
SUMSUB_WEBHOOK_SECRET = _setting("SUMSUB_WEBHOOK_SECRET", env.str, default="" if PRODUCTION else "local-sumsub-secret")
# Provider events older than this (by their own creation time) are refused as stale replays.
KYC_WEBHOOK_MAX_AGE_SECONDS = _setting("KYC_WEBHOOK_MAX_AGE_SECONDS", env.int, default=3600)
KYC_DISCLOSURE_VERSION = "2026-01"
KYC_HIGH_RISK_COUNTRIES = _setting(
    "KYC_HIGH_RISK_COUNTRIES", env.list, default=["KP", "IR", "MM", "SY", "YE", "AF", "HT", "SS", "VE"]
)
WEBHOOK_HANDLERS = {
    "kyc": {"sumsub": "kyc.providers.sumsub.handle_event"},
    "psp": {
        "sandbox": "payments.webhooks.handle_event",
        "stripe": "payments.webhooks.handle_event",
        "crypto": "payments.webhooks.handle_event",
    },
}
# Where core.webhooks.WebhookLaneMiddleware looks for webhook doors (only views marked webhook_door take the lane).
WEBHOOK_PATH_PREFIXES = ["/webhooks/"]

# --- Payments -------------------------------------------------------------------------------------------------
PSP_PROVIDERS = {
    "sandbox": "payments.psp.sandbox.SandboxProvider",
    "stripe": "payments.psp.stripe.StripeProvider",
    "wire": "payments.psp.wire.WireProvider",
    "crypto": "payments.psp.crypto.CryptoProvider",
}
# The broker's bank account shown to clients who deposit by wire.
BROKER_BANK = {
    "beneficiary": _setting("BROKER_BANK_BENEFICIARY", env.str, default=f"{BROKER_NAME} Ltd (client money account)"),
    "iban": _setting("BROKER_BANK_IBAN", env.str, default="GB33BUKB20201555555555"),
    "bic": _setting("BROKER_BANK_BIC", env.str, default="BUKBGB22"),
}
# Which PSP takes card deposits in the portal: the built-in sandbox, or Stripe once its keys are set.
PAYMENTS_CARD_PROVIDER = _setting("PAYMENTS_CARD_PROVIDER", env.str, default="sandbox")
STRIPE_SECRET_KEY = _setting("STRIPE_SECRET_KEY", env.str, default="")
STRIPE_WEBHOOK_SECRET = _setting("STRIPE_WEBHOOK_SECRET", env.str, default="")
SANDBOX_PSP_WEBHOOK_SECRET = _setting(
    "SANDBOX_PSP_WEBHOOK_SECRET", env.str, default="" if PRODUCTION else "local-sandbox-psp-secret"
)
PAYMENTS_CURRENCIES = ("USD", "EUR")
PAYMENTS_MIN_DEPOSIT = Decimal(_setting("PAYMENTS_MIN_DEPOSIT", env.str, default="10"))
PAYMENTS_MAX_DEPOSIT = Decimal(_setting("PAYMENTS_MAX_DEPOSIT", env.str, default="100000"))
# Reference rates for AML thresholds (USD per unit); not used to convert client money.
PAYMENTS_FX_TO_USD = {"USD": "1", "EUR": "1.08"}
# Client money conversion (payments.fx): mid rates per pair and the broker's spread against the client. The rate
# used is recorded on each converted deposit.
PAYMENTS_FX_RATES = _setting("PAYMENTS_FX_RATES", env.json, default={"EURUSD": "1.0800"})
PAYMENTS_FX_SPREAD = Decimal(_setting("PAYMENTS_FX_SPREAD", env.str, default="0.005"))
# A crypto gateway with IPN callbacks (payments.psp.crypto): offered once its keys are set.
CRYPTO_PSP_API_URL = _setting("CRYPTO_PSP_API_URL", env.str, default="https://api.nowpayments.io")
CRYPTO_PSP_API_KEY = _setting("CRYPTO_PSP_API_KEY", env.str, default="")
CRYPTO_PSP_IPN_SECRET = _setting("CRYPTO_PSP_IPN_SECRET", env.str, default="")
CRYPTO_PSP_MIN_CONFIRMATIONS = _setting("CRYPTO_PSP_MIN_CONFIRMATIONS", env.int, default=2)
# How clients may pay (payments.routing): per route its provider, currencies, countries ("*" all, "!XX" excluded),
# limits and fee (percent + fixed, borne by the broker). Cheapest eligible first in the portal.
_CARD_ROUTE = {
    "method": "card", "provider": PAYMENTS_CARD_PROVIDER, "label": "Card", "currencies": ["USD", "EUR"],
    "countries": ["*"], "min": "10", "max": "20000", "fee_percent": "2.9", "fee_fixed": "0.30",
}  # fmt: skip
_WIRE_ROUTE = {
    "method": "wire", "provider": "wire", "label": "Bank transfer", "currencies": ["USD", "EUR"], "countries": ["*"],
    "min": "100", "max": "100000", "fee_percent": "0", "fee_fixed": "0",
}  # fmt: skip
_CRYPTO_ROUTE = {
    "method": "crypto", "provider": "crypto", "label": "Crypto (BTC, ETH, USDT)", "currencies": ["USD", "EUR"],
    "countries": ["*", "!US"], "min": "20", "max": "50000", "fee_percent": "0.5", "fee_fixed": "0",
}  # fmt: skip
PAYMENTS_ROUTES = _setting(
    "PAYMENTS_ROUTES",
    env.json,
    default=[_CARD_ROUTE, _WIRE_ROUTE] + ([_CRYPTO_ROUTE] if CRYPTO_PSP_API_KEY else []),
)

# --- Analytics ------------------------------------------------------------------------------------------------
# The broker's trading day: MT5 servers usually keep EET/EEST, so a deal at 23:30 UTC belongs to the next day.
BROKER_TIME_ZONE = _setting("BROKER_TIME_ZONE", env.str, default="Europe/Athens")
try:
    from zoneinfo import ZoneInfo as _ZoneInfo

    _ZoneInfo(BROKER_TIME_ZONE)
except (KeyError, ValueError) as _exc:
    sys.exit(f"Configuration error: BROKER_TIME_ZONE is not valid ({_exc!r}).")
# The nightly build redoes this many trading days back, so deposits and withdrawals that settled late are counted.
ANALYTICS_REBUILD_DAYS = _setting("ANALYTICS_REBUILD_DAYS", env.int, default=3)
# A fill-state row left STARTED for longer than this is a build whose process died; the next run redoes it.
ANALYTICS_STALLED_MINUTES = _setting("ANALYTICS_STALLED_MINUTES", env.int, default=30)
# PostgreSQL memory for the build's aggregates (SET LOCAL inside the build's transaction only).
ANALYTICS_WORK_MEM = _setting("ANALYTICS_WORK_MEM", env.str, default="256MB")
# Optional read replica: the build reads its sources there; the tables are written on the primary.
ANALYTICS_DATABASE_URL = _setting("ANALYTICS_DATABASE_URL", env.str, default="")
if ANALYTICS_DATABASE_URL:
    DATABASES["analytics"] = _setting("ANALYTICS_DATABASE_URL", env.db)
    DATABASES["analytics"]["CONN_MAX_AGE"] = DATABASES["default"].get("CONN_MAX_AGE", 0)
    DATABASE_ROUTERS = ["analytics.router.AnalyticsReplicaRouter"]
CELERY_BEAT_SCHEDULE |= {
    # Shortly after the broker's midnight (00:15 Athens is 21:15 or 22:15 UTC): yesterday's buckets, then AML.
    "analytics.nightly": {"task": "analytics.nightly", "schedule": crontab(hour="21,22", minute=15)},
    # Keeps each live account's last snapshot of the trading day, so balance and equity at day end are known.
    "analytics.account_day_end_capture": {"task": "analytics.account_day_end_capture", "schedule": 300.0},
}

# --- IB program -----------------------------------------------------------------------------------------------
# The first-touch referral cookie set by /r/<code>/ and how long a click may still attribute a signup.
IB_REFERRAL_COOKIE = _setting("IB_REFERRAL_COOKIE", env.str, default="ib_ref")
IB_ATTRIBUTION_WINDOW_DAYS = _setting("IB_ATTRIBUTION_WINDOW_DAYS", env.int, default=30)
# Key of the hash that replaces click IPs; empty derives one from SECRET_KEY.
IB_CLICK_SALT = _setting("IB_CLICK_SALT", env.str, default="")
# Deal ids per commission-engine transaction.
IB_ENGINE_BATCH_SIZE = _setting("IB_ENGINE_BATCH_SIZE", env.int, default=1_000_000)
# PostgreSQL memory for the engine's hash joins and aggregates (SET LOCAL in its transaction only).
IB_ENGINE_WORK_MEM_MB = _setting("IB_ENGINE_WORK_MEM_MB", env.int, default=128)
# Set-based SQL jobs: they share the analytics workers rather than delay payments or MT5 work.
CELERY_TASK_ROUTES["ib.*"] = {"queue": "analytics"}
CELERY_BEAT_SCHEDULE |= {
    # After deal import has caught up for the night (each import also triggers a run through a signal).
    "ib.commissions_run": {"task": "ib.commissions_run", "schedule": crontab(hour=0, minute=40)},
    # Daily IBs every day, monthly IBs on the first run after their month ended (and any review window).
    "ib.payouts_release": {"task": "ib.payouts_release", "schedule": crontab(hour=4, minute=10)},
}
