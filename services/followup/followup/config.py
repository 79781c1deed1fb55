"""Follow-up settings, read only from the environment, with local defaults."""

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
    smtp_host: str
    smtp_port: int
    smtp_username: str
    smtp_password: str
    smtp_starttls: bool
    mail_from: str

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            mongodb_uri=config.mongodb_uri(),
            database=config.env_str("FOLLOWUP_MONGODB_DATABASE", "turnout_followup"),
            kafka_bootstrap_servers=config.kafka_bootstrap_servers(),
            secret_key=config.secret_key(),
            topic_partitions=config.topic_partitions(),
            consumer_group=config.env_str("FOLLOWUP_CONSUMER_GROUP", "turnout-followup"),
            log_level=config.env_str("LOG_LEVEL", "INFO"),
            smtp_host=config.env_str("SMTP_HOST", "127.0.0.1"),
            smtp_port=config.env_int("SMTP_PORT", 1025, minimum=1),
            smtp_username=config.env_str("SMTP_USERNAME", ""),
            smtp_password=config.env_str("SMTP_PASSWORD", ""),
            smtp_starttls=config.env_bool("SMTP_STARTTLS", False),
            mail_from=config.env_str("MAIL_FROM", "Turnout <hello@turnout.localhost>"),
        )
