"""Reading typed settings from the environment (the only source of settings)."""

from __future__ import annotations

import os


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
    # retryWrites=false: SecantusDB's retryable-write cache degrades after
    # ~10k writes; real MongoDB deployments set their own URI.
    return env_str("MONGODB_URI", "mongodb://127.0.0.1:27017/?retryWrites=false&directConnection=true")


def topic_partitions() -> int:
    return env_int("TURNOUT_TOPIC_PARTITIONS", 6, minimum=1)
