"""``python -m analytics.entrypoints.worker``: consumes both topics into the
archive and projections, relays analytics' outbox (the answers to data
requests) to ``turnout.privacy``, and sweeps what the retention periods say
is too old: three threads of one process.

The relay runs here rather than in a process of its own, as in every
service's worker (``turnout_common.relay_main``): analytics publishes only
answers to data requests, a handful a day. It holds the same relay lease as a
separate relay would (one sends at a time, another worker stands by) and,
idle, sleeps on a change stream of the outbox.
"""

from __future__ import annotations

import logging

from turnout_common import logs, mongo
from turnout_common.contracts import CHECKIN_TOPIC, FOLLOWUP_TOPIC
from turnout_common.relay_main import relay_loop
from turnout_common.runtime import Loop, exit_with, run_loops
from turnout_common.worker_main import ConsumerSpec, consumer_loop

log = logging.getLogger("analytics.worker")

# The relay's lease: how long a standing-by worker waits before taking over
# from a dead one (an idle relay lets it lapse and takes it again for its next
# batch: see OutboxRelay).
RELAY_LEASE_SECONDS = 30.0


def main() -> None:
    from analytics.adapters.mongo import ARCHIVE, MongoProjections, ensure_indexes
    from analytics.adapters.privacy import RetentionRecords
    from analytics.config import Settings
    from analytics.service_layer.projector import project
    from analytics.service_layer.rebuild import Progress, upgrade_outdated
    from analytics.service_layer.retention import retention_loop

    settings = Settings.from_env()
    logs.configure_logging("analytics", settings.log_level)
    client = mongo.connect(settings.mongodb_uri, "turnout-analytics-worker")
    db = client[settings.database]
    ensure_indexes(db)

    def progress(step: Progress) -> None:
        log.info("projection upgrade: %s %d/%d messages (%.0f/s)", step.phase, step.done, step.total, step.rate)

    # Projections built by an older version of the rules are rebuilt from the
    # archive before consuming (the dashboard keeps showing the old ones meanwhile).
    upgraded = upgrade_outdated(MongoProjections(client, db), progress)
    if upgraded is not None:
        log.info("projections %s rebuilt in %.1fs", ", ".join(upgraded.projections), upgraded.seconds)
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
        # The dashboard shows a scan within a second, also after a quiet spell.
        # An idle fetch is held up to 1 s: Tansu answers a held fetch some
        # time after a message arrives, the later the longer the hold
        # (measured with one consumer: at most 0.25 s with a 0.5 s hold,
        # 0.42 s with 1 s, 0.75 s with 1.5 s, 0.93 s with 2 s), and each
        # answer costs the broker and this worker CPU (with nothing to fetch,
        # 1.2 % of a core at 0.5 s, 0.7 % at 1 s: the idle stack's largest
        # part). While check-ins keep coming the hold is 0.25 s
        # (ConsumerWorker._adapt_fetch_wait): a caught-up consumer under load
        # waits less for the next.
        fetch_max_wait_ms=1000,
        busy_fetch_max_wait_ms=250,
        # Under load a batch gathers 0.2 s of messages: one transaction and
        # one write per projection for them all.
        linger_ms=200,
    )
    bootstrap, partitions = settings.kafka_bootstrap_servers, settings.topic_partitions
    loops: list[tuple[str, Loop]] = [
        ("consumer", consumer_loop(spec, client, db, bootstrap, partitions)),
        ("relay", relay_loop(db, bootstrap, partitions, "analytics", lease_seconds=RELAY_LEASE_SECONDS, wake_gap=1.0)),
        ("retention", retention_loop(RetentionRecords(db), settings.retention_sweep_seconds)),
    ]
    exit_with(run_loops("analytics-worker", loops))


if __name__ == "__main__":
    main()
