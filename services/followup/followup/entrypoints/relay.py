"""``python -m followup.entrypoints.relay``: moves follow-up's outbox to Kafka."""

from __future__ import annotations

from turnout_common.relay_main import relay_main


def main() -> None:
    from followup.config import Settings

    settings = Settings.from_env()
    relay_main(
        "followup",
        settings.mongodb_uri,
        settings.database,
        settings.kafka_bootstrap_servers,
        settings.topic_partitions,
        settings.log_level,
    )


if __name__ == "__main__":
    main()
