"""``python -m followup.entrypoints.worker``: consumes ``turnout.checkin`` into contacts and attendance."""

from __future__ import annotations

from turnout_common import logs, mongo
from turnout_common.contracts import CHECKIN_TOPIC
from turnout_common.runtime import exit_with, run_loops
from turnout_common.worker_main import ConsumerSpec, consumer_loop


def main() -> None:
    from followup.adapters.mongo import ensure_indexes
    from followup.config import Settings
    from followup.service_layer.handlers import HANDLED_TYPES, apply_checkin_messages

    settings = Settings.from_env()
    logs.configure_logging("followup", settings.log_level)
    client = mongo.connect(settings.mongodb_uri, "turnout-followup-worker")
    db = client[settings.database]
    ensure_indexes(db)
    spec = ConsumerSpec(
        service="followup",
        group_id=settings.consumer_group,
        topics=(CHECKIN_TOPIC,),
        handler=apply_checkin_messages,
        handled_types=HANDLED_TYPES,
    )
    loop = consumer_loop(spec, client, db, settings.kafka_bootstrap_servers, settings.topic_partitions)
    exit_with(run_loops("followup-worker", [("consumer", loop)]))


if __name__ == "__main__":
    main()
