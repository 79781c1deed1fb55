"""``python -m analytics.entrypoints.worker``: consumes both topics into the archive and projections."""

from __future__ import annotations

from turnout_common import logs, mongo
from turnout_common.contracts import CHECKIN_TOPIC, FOLLOWUP_TOPIC
from turnout_common.runtime import exit_with, run_loops
from turnout_common.worker_main import ConsumerSpec, consumer_loop


def main() -> None:
    from analytics.adapters.mongo import ARCHIVE, ensure_indexes
    from analytics.config import Settings
    from analytics.service_layer.projector import project

    settings = Settings.from_env()
    logs.configure_logging("analytics", settings.log_level)
    client = mongo.connect(settings.mongodb_uri, "turnout-analytics-worker")
    db = client[settings.database]
    ensure_indexes(db)
    spec = ConsumerSpec(
        service="analytics",
        group_id=settings.consumer_group,
        topics=(CHECKIN_TOPIC, FOLLOWUP_TOPIC),
        handler=project,
        # Every valid message is archived (the archive doubles as the log of
        # applied ids), even the types no projection reads yet.
        handled_types=None,
        processed_collection=ARCHIVE,
        store_envelope=True,
    )
    loop = consumer_loop(spec, client, db, settings.kafka_bootstrap_servers, settings.topic_partitions)
    exit_with(run_loops("analytics-worker", [("consumer", loop)]))


if __name__ == "__main__":
    main()
