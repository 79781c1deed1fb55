"""Analytics settings, read only from the environment, with local defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass

from turnout_common import config


@dataclass(frozen=True, slots=True)
class Settings(config.ServiceSettings):
    consumer_group: str
    # Server-Sent Events: how often a live stream looks at the projection, and
    # how long one stream lasts before the browser reconnects (a gthread
    # thread is held for the whole stream).
    live_poll_seconds: float
    live_max_seconds: float
    # How often the worker strips details older than the retention periods.
    retention_sweep_seconds: float

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            **config.service_values("analytics"),
            consumer_group=config.consumer_group("analytics"),
            live_poll_seconds=config.env_float("ANALYTICS_LIVE_POLL_SECONDS", 0.25),
            live_max_seconds=config.env_float("ANALYTICS_LIVE_MAX_SECONDS", 300.0),
            retention_sweep_seconds=_positive("ANALYTICS_RETENTION_SWEEP_SECONDS", 3600.0),
        )


def _positive(name: str, default: float) -> float:
    value = config.env_float(name, default)
    if not (math.isfinite(value) and value > 0):
        raise config.SettingError(f"{name} must be a positive number of seconds, got {value}")
    return value
