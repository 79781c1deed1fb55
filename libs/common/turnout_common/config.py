"""Reading typed settings from the environment (the only source of settings)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypedDict


class SettingError(ValueError):
    """A setting in the environment is present but unusable."""


def env_str(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingError(f"{name} must be an integer, got {raw!r}") from exc
    if minimum is not None and value < minimum:
        raise SettingError(f"{name} must be >= {minimum}, got {value}")
    return value


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingError(f"{name} must be a number, got {raw!r}") from exc


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingError(f"{name} must be true or false, got {raw!r}")


DEV_SECRET_KEY = "turnout-local-development-secret-do-not-use-in-production"


def secret_key() -> str:
    """The signing key for sessions, badges and links.

    Local runs get a fixed development key; any deployment sets
    ``TURNOUT_SECRET_KEY`` (compose refuses to start without it).
    """
    return env_str("TURNOUT_SECRET_KEY", DEV_SECRET_KEY)


def kafka_bootstrap_servers() -> str:
    return env_str("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def mongodb_uri() -> str:
    # retryWrites=false: SecantusDB's retryable-write cache degrades as writes
    # accumulate; real MongoDB deployments set their own URI.
    return env_str("MONGODB_URI", "mongodb://127.0.0.1:27017/?retryWrites=false&directConnection=true")


def topic_partitions() -> int:
    return env_int("TURNOUT_TOPIC_PARTITIONS", 6, minimum=1)


def topic_retention_hours() -> int:
    """How long the topics keep messages (``TURNOUT_TOPIC_RETENTION_HOURS``, default a week).

    Messages carry personal data (names, emails): after an erasure the
    services hold nothing of the person, and the broker forgets them once
    this period (plus at most one day, the segment roll) has passed.
    """
    return env_int("TURNOUT_TOPIC_RETENTION_HOURS", 168, minimum=1)


# -- what every service reads ------------------------------------------------------------------------

SERVICES = ("checkin", "followup", "analytics")
DEFAULT_PUBLIC_URLS = {
    "checkin": "http://127.0.0.1:8001",
    "followup": "http://127.0.0.1:8002",
    "analytics": "http://127.0.0.1:8003",
}
DEFAULT_MAX_BODY_BYTES = 1 * 1024 * 1024


def public_url_variable(service: str) -> str:
    return f"TURNOUT_PUBLIC_URL_{service.upper()}"


@dataclass(frozen=True, slots=True)
class PublicUrls:
    """Where a browser reaches each service (no trailing slash), and which of
    them the environment names: only those are trusted as the origin of a
    browser request signed in by cookie (a service always trusts its own host)."""

    checkin: str = DEFAULT_PUBLIC_URLS["checkin"]
    followup: str = DEFAULT_PUBLIC_URLS["followup"]
    analytics: str = DEFAULT_PUBLIC_URLS["analytics"]
    configured: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> PublicUrls:
        urls = {service: env_str(public_url_variable(service), DEFAULT_PUBLIC_URLS[service]) for service in SERVICES}
        configured = tuple(os.environ[name] for name in map(public_url_variable, SERVICES) if os.environ.get(name))
        return cls(
            checkin=urls["checkin"].rstrip("/"),
            followup=urls["followup"].rstrip("/"),
            analytics=urls["analytics"].rstrip("/"),
            configured=configured,
        )

    def of(self, service: str) -> str:
        url: str = getattr(self, service)
        return url


# -- abuse limits ---------------------------------------------------------------------------------------

RATE_LIMIT_VARIABLES = {
    "storage_uri": "TURNOUT_RATE_LIMIT_STORAGE",
    "sign_in_account": "TURNOUT_RATE_LIMIT_SIGN_IN_ACCOUNT",
    "sign_in_address": "TURNOUT_RATE_LIMIT_SIGN_IN_ADDRESS",
    "kiosk_search": "TURNOUT_RATE_LIMIT_KIOSK_SEARCH",
    "kiosk_roster": "TURNOUT_RATE_LIMIT_KIOSK_ROSTER",
    "public_registration": "TURNOUT_RATE_LIMIT_PUBLIC_REGISTRATION",
    "links": "TURNOUT_RATE_LIMIT_LINKS",
}


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    """How often a caller may do what attackers repeat (``turnout_common.limits``
    applies them). Each limit is a Flask-Limiter string such as ``10 per 15 minutes``
    (several joined by ``;``); the README's configuration section says why each
    default is what it is."""

    # Where the counters live: ``memory://`` (per process: with N gunicorn
    # workers a client may get up to N times each limit) or ``mongodb://...``
    # (shared by every process).
    storage_uri: str = "memory://"
    # Failed sign-ins per account (the normalized email), API and form together.
    sign_in_account: str = "10 per 15 minutes"
    # Sign-in attempts (failed or not) per client address, API and form together.
    sign_in_address: str = "50 per 15 minutes"
    # Name searches per kiosk.
    kiosk_search: str = "120 per minute"
    # Roster downloads per kiosk: a kiosk asks once a minute, plus a few times
    # when it (re)starts; the hourly bound holds a scraper to about that pace.
    kiosk_roster: str = "10 per minute;150 per hour"
    # Public registration form posts per client address.
    public_registration: str = "60 per 15 minutes"
    # Each follow-up email link route (unsubscribe, feedback, click, introduction) per client address.
    links: str = "120 per minute"

    @classmethod
    def from_env(cls) -> RateLimitSettings:
        from limits import parse_many

        defaults = cls()
        values = {field: env_str(name, getattr(defaults, field)) for field, name in RATE_LIMIT_VARIABLES.items()}
        for field, value in values.items():
            if field == "storage_uri":
                if not value.startswith(("memory://", "mongodb://", "mongodb+srv://")):
                    raise SettingError(f"{RATE_LIMIT_VARIABLES[field]} must be memory:// or a mongodb:// URI")
                continue
            try:
                parse_many(value)
            except ValueError as exc:
                raise SettingError(
                    f"{RATE_LIMIT_VARIABLES[field]} must be a rate like '10 per 15 minutes', got {value!r}"
                ) from exc
        return cls(**values)


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """The settings every service has; each service's ``Settings`` extends it.

    ``{SERVICE}_MONGODB_DATABASE`` (default ``turnout_<service>``) and
    ``{SERVICE}_MAX_BODY_BYTES`` are per service; the rest are shared names.
    """

    service: str
    mongodb_uri: str
    database: str
    kafka_bootstrap_servers: str
    secret_key: str
    topic_partitions: int
    log_level: str
    public_urls: PublicUrls
    max_body_bytes: int
    # Behind a reverse proxy (TURNOUT_TRUST_PROXY=1): read the client's address,
    # scheme and host from its X-Forwarded-* headers.
    trust_proxy: bool
    # Abuse limits (TURNOUT_RATE_LIMIT_*), the same names in every service.
    rate_limits: RateLimitSettings

    @property
    def public_url(self) -> str:
        """Where a browser reaches this service."""
        return self.public_urls.of(self.service)


class ServiceValues(TypedDict):
    service: str
    mongodb_uri: str
    database: str
    kafka_bootstrap_servers: str
    secret_key: str
    topic_partitions: int
    log_level: str
    public_urls: PublicUrls
    max_body_bytes: int
    trust_proxy: bool
    rate_limits: RateLimitSettings


def service_values(service: str, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> ServiceValues:
    """The ``ServiceSettings`` fields of ``service`` from the environment, for
    ``Settings(**service_values(...), <the service's own fields>)``."""
    prefix = service.upper()
    return ServiceValues(
        service=service,
        mongodb_uri=mongodb_uri(),
        database=env_str(f"{prefix}_MONGODB_DATABASE", f"turnout_{service}"),
        kafka_bootstrap_servers=kafka_bootstrap_servers(),
        secret_key=secret_key(),
        topic_partitions=topic_partitions(),
        log_level=env_str("LOG_LEVEL", "INFO"),
        public_urls=PublicUrls.from_env(),
        max_body_bytes=env_int(f"{prefix}_MAX_BODY_BYTES", max_body_bytes, minimum=1024),
        trust_proxy=os.environ.get("TURNOUT_TRUST_PROXY") == "1",
        rate_limits=RateLimitSettings.from_env(),
    )


def consumer_group(service: str) -> str:
    """The Kafka consumer group of ``service``'s worker (``{SERVICE}_CONSUMER_GROUP``)."""
    return env_str(f"{service.upper()}_CONSUMER_GROUP", f"turnout-{service}")
