"""Settings for chatsite: one module, read from the environment.

Laptop defaults need nothing: SQLite, the in-memory channel layer and the built-in offline demo model.
On Heroku (the platform sets ``DYNO``) production defaults switch on and SECRET_KEY becomes mandatory.
Every variable is listed in the README's configuration table.
"""

import logging
import os
import warnings
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name, default=""):
    return os.environ.get(name, default).strip()


def env_bool(name, default=False):
    raw = env_str(name)
    if not raw:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {raw!r}")


def env_int(name, default):
    raw = env_str(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None


def env_float(name, default):
    raw = env_str(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None


def env_list(name, default=()):
    raw = env_str(name)
    if not raw:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


ON_HEROKU = bool(env_str("DYNO"))
DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if ON_HEROKU:
        raise ImproperlyConfigured("SECRET_KEY must be set on Heroku (app.json generates one).")
    # Only ever used off Heroku: laptops, tests, CI.
    SECRET_KEY = "django-insecure-local-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", [".herokuapp.com"] if ON_HEROKU else ["localhost", "127.0.0.1", "[::1]", "testserver"]
)
# Other origins whose form posts and sockets are trusted. None by default, on Heroku too: the app's own origin
# needs no entry (Django and chat/socket/origins.py compare with the request's scheme and host), and a
# *.herokuapp.com entry would trust every other app on Heroku.
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "chatsite.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "chatsite.urls"

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

ASGI_APPLICATION = "chatsite.asgi.application"

# Database: SQLite by default, DATABASE_URL (Heroku Postgres) when set. Under ASGI every sync-to-async
# thread would hold its own connection, so Postgres connections are not persisted (CONN_MAX_AGE=0). Each process
# keeps a psycopg pool instead: opening a connection for every trip to the database thread cost more than the
# queries (bench/concurrency.py), and the pool caps a process at DATABASE_POOL_MAX connections, so two
# workers a dyno stay under 80 % of an Essential plan's 20. DATABASE_POOL_MAX=0 turns the pool off.
DATABASE_URL = env_str("DATABASE_URL")
DATABASE_POOL_MAX = env_int("DATABASE_POOL_MAX", 6)
# Heroku Postgres always speaks TLS, so TLS is required on Heroku; a private database without it (a CI service,
# the production smoke test) opts out with DATABASE_SSL_REQUIRE=0. Off it, an `?sslmode=` in the URL still counts.
DATABASE_SSL_REQUIRE = env_bool("DATABASE_SSL_REQUIRE", ON_HEROKU)
# The URL schemes of the two engines whose drivers requirements.txt installs (dj-database-url knows more).
DATABASE_SCHEMES = {"postgres": "postgresql", "postgresql": "postgresql", "pgsql": "postgresql", "sqlite": "sqlite3"}


def sqlite_database(name):
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": name,
        # A local file has no connection limit; reopening it for every ORM call costs more than the call.
        "CONN_MAX_AGE": 600,
        # Writers wait for each other instead of failing with "database is locked".
        # WAL lets the page read while a reply is written; NORMAL sync is safe in WAL mode against crashes.
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


def postgres_database(url):
    # Health checks make the pool test a connection before lending it (one round trip), so a connection
    # the server dropped while it sat idle fails no request.
    database = dj_database_url.parse(
        url, conn_max_age=0, conn_health_checks=bool(DATABASE_POOL_MAX), ssl_require=DATABASE_SSL_REQUIRE
    )
    if DATABASE_POOL_MAX:
        # A request that waits longer than `timeout` for a connection fails instead of piling up.
        database.setdefault("OPTIONS", {})["pool"] = {"min_size": 1, "max_size": DATABASE_POOL_MAX, "timeout": 10}
    return database


def database_from_url(url):
    """The database of a ``postgres://`` (``postgresql://``, ``pgsql://``) or ``sqlite://`` URL; any other URL is
    refused in one line that names the scheme only (the URL itself may hold a password)."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    engine = DATABASE_SCHEMES.get(scheme)
    if engine is None:
        accepted = ", ".join(f"{name}://" for name in DATABASE_SCHEMES)
        found = f"{scheme}://" if scheme else "no scheme"
        raise ImproperlyConfigured(f"DATABASE_URL must start with one of {accepted}, not {found}")
    if engine == "sqlite3":
        return sqlite_database(dj_database_url.parse(url)["NAME"])
    return postgres_database(url)


DATABASES = {
    "default": database_from_url(DATABASE_URL) if DATABASE_URL else sqlite_database(
        env_str("SQLITE_PATH") or BASE_DIR / "db.sqlite3"
    )
}

# Channel layer: in-memory on one process, Redis when REDIS_URL is set (Heroku Key-Value Store).
REDIS_URL = env_str("REDIS_URL")
# Redis connections a process may hold for the channel layer (chat/redis_pools.py); the upstream budget holds up
# to 2 more. Heroku Key-Value Store mini allows 20 clients over all processes and dynos.
REDIS_MAX_CONNECTIONS = env_int("REDIS_MAX_CONNECTIONS", 4)
if REDIS_URL:
    # redis-py's default read timeout (5 s) equals channels_redis's blocking read: a quiet layer would raise on
    # every read and drop idle sockets. The timeout must be longer than that read.
    redis_host = {"address": REDIS_URL, "socket_timeout": 15, "socket_connect_timeout": 5}
    if REDIS_URL.startswith("rediss://"):
        # Heroku's Key-Value Store uses self-signed certificates; this key breaks plain redis:// URLs.
        redis_host["ssl_cert_reqs"] = None
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chat.redis_pools.ChannelLayer",  # channels_redis's core layer, with a pool ceiling
            "CONFIG": {"hosts": [redis_host], "capacity": 1000, "expiry": 30},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat:index"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "chatsite.storage.StaticStorage"},
}
# Before collectstatic (a laptop, the tests) WhiteNoise serves straight from the source folders.
WHITENOISE_USE_FINDERS = not (STATIC_ROOT / "staticfiles.json").exists()
# ...and then it has no STATIC_ROOT to scan, which is expected, not worth a warning on every start.
warnings.filterwarnings("ignore", message="No directory at")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Production hardening: on by default on Heroku, each switchable for other hosts.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", ON_HEROKU)
# Uptime checkers and routers probe /healthz over plain HTTP; a redirect would read as "down".
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", ON_HEROKU)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if ON_HEROKU else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Preloading is a promise about a whole registered domain, made by its owner when submitting it to the browsers'
# list; it cannot apply to *.herokuapp.com and is no default to ship. So `check --deploy` is not asked about it.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"


class OneLineFormatter(logging.Formatter):
    """``key=value`` lines, one per record: a traceback's newlines are escaped so every line of the log stands
    alone for grep and for Heroku's log drains. Loggers log ids, timings and usage, never message text."""

    def format(self, record):
        return super().format(record).replace("\n", "\\n")


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "keyvalue": {
            "()": OneLineFormatter,
            "fmt": "time=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
            "datefmt": "%Y-%m-%dT%H:%M:%S%z",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "keyvalue"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "daphne": {"level": "WARNING"}},
}

# Heroku Managed Inference. With INFERENCE_URL unset, replies come from the built-in offline demo model.
INFERENCE_URL = env_str("INFERENCE_URL").rstrip("/")
INFERENCE_KEY = env_str("INFERENCE_KEY")
# Read once here: the pages and the socket label demo replies, and the demo model is started for it (chat/standin/).
INFERENCE_DEMO = not INFERENCE_URL
INFERENCE_MODEL_ID = env_str("INFERENCE_MODEL_ID") or "claude-4-5-sonnet"
INFERENCE_MAX_TOKENS = env_int("INFERENCE_MAX_TOKENS", 4096)
INFERENCE_CONNECT_TIMEOUT = env_float("INFERENCE_CONNECT_TIMEOUT", 5.0)
# Seconds allowed between two bytes of a reply: long enough for a model that thinks before its first token.
INFERENCE_READ_TIMEOUT = env_float("INFERENCE_READ_TIMEOUT", 180.0)
# Streams held open at once per process; above the concurrency one process is meant to carry.
INFERENCE_MAX_CONNECTIONS = env_int("INFERENCE_MAX_CONNECTIONS", 1000)
INFERENCE_MAX_RETRIES = env_int("INFERENCE_MAX_RETRIES", 3)
# First backoff delay when the API gave no Retry-After or reset header; doubles per attempt, with jitter.
INFERENCE_RETRY_BASE_DELAY = env_float("INFERENCE_RETRY_BASE_DELAY", 0.5)
# Pace of the offline demo model, in seconds between deltas.
DEMO_DELTA_DELAY = env_float("DEMO_DELTA_DELAY", 0.03)

# The chat loop.
CHAT_SYSTEM_PROMPT = env_str("CHAT_SYSTEM_PROMPT", "You are Claude, a helpful assistant. Answer in Markdown.")
# Models a user may pick per conversation (comma-separated ids); the default model is always one of them.
CHAT_MODELS = list(dict.fromkeys([INFERENCE_MODEL_ID, *filter(None, env_str("CHAT_MODELS").replace(" ", "").split(","))]))
# Unset: the model's own default temperature.
CHAT_DEFAULT_TEMPERATURE = env_float("CHAT_DEFAULT_TEMPERATURE", None)
CHAT_THINKING_BUDGET = env_int("CHAT_THINKING_BUDGET", 2048)
CHAT_TOOL_ROUNDS = env_int("CHAT_TOOL_ROUNDS", 5)
CHAT_AUTO_TITLES = env_bool("CHAT_AUTO_TITLES", True)
CHAT_MAX_MESSAGE_CHARS = env_int("CHAT_MAX_MESSAGE_CHARS", 100_000)
CHAT_DELTA_INTERVAL = env_float("CHAT_DELTA_INTERVAL", 0.04)
CHAT_FLUSH_INTERVAL = env_float("CHAT_FLUSH_INTERVAL", 1.0)
CHAT_HEARTBEAT_INTERVAL = env_float("CHAT_HEARTBEAT_INTERVAL", 20.0)
# A streaming reply whose writer has not written for this long is marked interrupted (its process died).
CHAT_STALE_AFTER = env_float("CHAT_STALE_AFTER", 45.0)
# How often each process looks for such replies, so a watcher sees "interrupted" within STALE_AFTER + this.
CHAT_SWEEP_INTERVAL = env_float("CHAT_SWEEP_INTERVAL", 10.0)
# On SIGTERM running replies get this long to finish before they are saved as interrupted. Kept, with the
# HTTP drain before it (chatsite/workers.py), under the Procfile's --graceful-timeout and Heroku's 30 s.
CHAT_SHUTDOWN_GRACE = env_float("CHAT_SHUTDOWN_GRACE", 20.0)
# Per-user quotas; staff (the reviewers) are exempt unless CHAT_QUOTA_EXEMPT_STAFF=0.
CHAT_USER_MESSAGES_PER_MINUTE = env_int("CHAT_USER_MESSAGES_PER_MINUTE", 20)
CHAT_USER_TOKENS_PER_DAY = env_int("CHAT_USER_TOKENS_PER_DAY", 2_000_000)
CHAT_QUOTA_EXEMPT_STAFF = env_bool("CHAT_QUOTA_EXEMPT_STAFF", True)
# Frames a socket may send: a burst, refilled at a steady rate; past CHAT_SOCKET_FLOOD_CLOSE refused frames
# in a row the socket is closed (4429).
CHAT_SOCKET_BURST = env_int("CHAT_SOCKET_BURST", 20)
CHAT_SOCKET_RATE = env_float("CHAT_SOCKET_RATE", 5.0)
CHAT_SOCKET_FLOOD_CLOSE = env_int("CHAT_SOCKET_FLOOD_CLOSE", 20)
CHAT_HISTORY_MESSAGES = env_int("CHAT_HISTORY_MESSAGES", 200)
# Largest WebSocket frame accepted: a maximal message even if every character is JSON-escaped.
CHAT_MAX_FRAME_BYTES = env_int("CHAT_MAX_FRAME_BYTES", CHAT_MAX_MESSAGE_CHARS * 6 + 4096)

# Image attachments (chat/uploads/images.py explains the limits). Uploads over CHAT_MAX_UPLOAD_BYTES are refused
# before Django reads them (chatsite/limits.py). Pixel caps are checked from the header, before decoding:
# JPEG decodes at reduced scale, PNG/GIF/WebP at full size (about 4 bytes a pixel), hence two caps.
CHAT_MAX_UPLOAD_BYTES = env_int("CHAT_MAX_UPLOAD_BYTES", 20 * 1024 * 1024)
CHAT_MAX_IMAGE_PIXELS = env_int("CHAT_MAX_IMAGE_PIXELS", 100_000_000)
CHAT_MAX_IMAGE_PIXELS_LOSSLESS = env_int("CHAT_MAX_IMAGE_PIXELS_LOSSLESS", 30_000_000)
# Decoding runs in a child process per upload (chat/uploads/isolation.py): at most CHAT_IMAGE_DECODERS at once per
# process, each allowed CHAT_IMAGE_DECODE_MEMORY_MB more address space (also the header's cost estimate cap) and
# CHAT_IMAGE_DECODE_SECONDS; past either the user is told the image is too large or complex to process.
CHAT_IMAGE_DECODERS = env_int("CHAT_IMAGE_DECODERS", 1)
CHAT_IMAGE_DECODE_MEMORY_MB = env_int("CHAT_IMAGE_DECODE_MEMORY_MB", 140)
CHAT_IMAGE_DECODE_SECONDS = env_int("CHAT_IMAGE_DECODE_SECONDS", 30)

# The add-on's limits, shared by every process (Redis when REDIS_URL is set).
UPSTREAM_REQUESTS_PER_MINUTE = env_int("UPSTREAM_REQUESTS_PER_MINUTE", 150)
UPSTREAM_TOKENS_PER_MINUTE = env_int("UPSTREAM_TOKENS_PER_MINUTE", 800_000)
UPSTREAM_WINDOW_SECONDS = env_float("UPSTREAM_WINDOW_SECONDS", 60.0)
# The Redis key prefix of the shared window: apps sharing one add-on must share it, apps that don't must not.
UPSTREAM_BUDGET_KEY = env_str("UPSTREAM_BUDGET_KEY", "chat:upstream")
# Shortest time between two renders of a streaming reply's open last block (finished blocks render once).
CHAT_RENDER_INTERVAL = env_float("CHAT_RENDER_INTERVAL", 0.08)
