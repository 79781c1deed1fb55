"""``WorkSignals`` on MongoDB change streams (``turnout_common.wake.IdlePause``):
the senders sleep on ``send_batches``, the scheduler on ``followup_plans``."""

from __future__ import annotations

from pymongo.database import Database

from followup.adapters.mongo import PLANS, SEND_BATCHES
from turnout_common.types import Doc
from turnout_common.wake import IdlePause

# A send batch to deliver: a new one (inserted with its nudges), or one made
# ``ready`` again (released with nudges left, retried later, reopened). Lease
# renewals and claims by other senders do not wake anyone.
BATCH_READY: list[Doc] = [
    {
        "$match": {
            "$or": [
                {"operationType": "insert"},
                {"operationType": "update", "updateDescription.updatedFields.state": "ready"},
                {"operationType": "replace"},
            ]
        }
    },
    {"$project": {"_id": 1}},
]

# A plan to work on: a gathering ended (insert), a late check-in marked people
# dirty (update). The scheduler's own lease writes happen only in passes that
# found work, while its stream is closed.
PLAN_CHANGED: list[Doc] = [
    {"$match": {"operationType": {"$in": ["insert", "update", "replace"]}}},
    {"$project": {"_id": 1}},
]


# How long one wait on the stream lasts before the loop looks at its stop
# event: each costs a getMore (measured on SecantusDB: ~0.45 ms of client and
# ~0.3 ms of database CPU), so 3 s rather than 1 s; a change still ends the
# wait at once, and a stop within 3 s is well inside the shutdown grace.
AWAIT_SECONDS = 3.0

# While the database is busy with others' writes (a check-in rush), SecantusDB
# answers each sleeping stream's getMore early and empty for every write;
# after such an answer the loop waits this long before asking again. Each
# getMore reads the oplog written since the last one, so fewer of them cost
# the database less under load; a batch or plan written meanwhile waits at
# most this long, so a batch made during a rush still goes out within a second.
WAKE_GAP_SECONDS = 0.5


class MongoWorkSignals:
    def __init__(self, db: Database[Doc]) -> None:
        self.db = db

    def batches(self, *, busy_pause: float, max_sleep: float) -> IdlePause:
        return IdlePause(
            self.db[SEND_BATCHES],
            BATCH_READY,
            busy_pause=busy_pause,
            max_sleep=max_sleep,
            await_seconds=AWAIT_SECONDS,
            spurious_gap=WAKE_GAP_SECONDS,
        )

    def plans(self, *, busy_pause: float, max_sleep: float) -> IdlePause:
        return IdlePause(
            self.db[PLANS],
            PLAN_CHANGED,
            busy_pause=busy_pause,
            max_sleep=max_sleep,
            await_seconds=AWAIT_SECONDS,
            spurious_gap=WAKE_GAP_SECONDS,
        )
