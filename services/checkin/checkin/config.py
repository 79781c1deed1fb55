"""Checkin settings, read only from the environment, with local defaults."""

from __future__ import annotations

from dataclasses import dataclass

from turnout_common import config


@dataclass(frozen=True, slots=True)
class Settings:
    mongodb_uri: str
    database: str
    kafka_bootstrap_servers: str
    secret_key: str
    topic_partitions: int
    public_url: str
    max_body_bytes: int
    log_level: str
    end_check_interval: float

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            mongodb_uri=config.mongodb_uri(),
            database=config.env_str("CHECKIN_MONGODB_DATABASE", "turnout_checkin"),
            kafka_bootstrap_servers=config.kafka_bootstrap_servers(),
            secret_key=config.secret_key(),
            topic_partitions=config.topic_partitions(),
            public_url=config.env_str("TURNOUT_PUBLIC_URL_CHECKIN", "http://127.0.0.1:8001"),
            # CSV imports of 10,000 rows are ~1-2 MB; everything else is tiny.
            max_body_bytes=config.env_int("CHECKIN_MAX_BODY_BYTES", 16 * 1024 * 1024, minimum=1024),
            log_level=config.env_str("LOG_LEVEL", "INFO"),
            end_check_interval=config.env_float("CHECKIN_END_CHECK_INTERVAL", 15.0),
        )
