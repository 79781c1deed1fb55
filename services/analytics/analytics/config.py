"""Analytics settings, read only from the environment, with local defaults."""

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
    consumer_group: str
    log_level: str
    checkin_public_url: str
    # Server-Sent Events: how often a live stream looks at the projection, and
    # how long one stream lasts before the browser reconnects (a gthread
    # thread is held for the whole stream).
    live_poll_seconds: float
    live_max_seconds: float

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            mongodb_uri=config.mongodb_uri(),
            database=config.env_str("ANALYTICS_MONGODB_DATABASE", "turnout_analytics"),
            kafka_bootstrap_servers=config.kafka_bootstrap_servers(),
            secret_key=config.secret_key(),
            topic_partitions=config.topic_partitions(),
            consumer_group=config.env_str("ANALYTICS_CONSUMER_GROUP", "turnout-analytics"),
            log_level=config.env_str("LOG_LEVEL", "INFO"),
            checkin_public_url=config.env_str("TURNOUT_PUBLIC_URL_CHECKIN", "http://127.0.0.1:8001").rstrip("/"),
            live_poll_seconds=config.env_float("ANALYTICS_LIVE_POLL_SECONDS", 0.25),
            live_max_seconds=config.env_float("ANALYTICS_LIVE_MAX_SECONDS", 300.0),
        )
