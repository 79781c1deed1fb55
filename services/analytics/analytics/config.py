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
        )
