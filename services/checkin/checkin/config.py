"""Checkin settings, read only from the environment, with local defaults."""

from __future__ import annotations

from dataclasses import dataclass

from turnout_common import config


@dataclass(frozen=True, slots=True)
class Settings(config.ServiceSettings):
    end_check_interval: float
    # Door scans arriving together are written in one transaction (off: each alone).
    group_commit: bool = True
    # How often the worker's retention sweeps run (and once at start).
    retention_sweep_seconds: float = 3600.0

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            # CSV imports of 10,000 rows are a megabyte or two; everything else is tiny.
            **config.service_values("checkin", max_body_bytes=16 * 1024 * 1024),
            end_check_interval=config.env_float("CHECKIN_END_CHECK_INTERVAL", 15.0),
            group_commit=config.env_bool("CHECKIN_GROUP_COMMIT", True),
            retention_sweep_seconds=config.env_float("CHECKIN_RETENTION_SWEEP_SECONDS", 3600.0),
        )
