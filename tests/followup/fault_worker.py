"""``python -m tests.followup.fault_worker``: the follow-up worker with a
``FaultInjector`` (``FOLLOWUP_FAULT_AT``, ``FOLLOWUP_FAULT_AFTER_MESSAGES``)
watching its senders. Test-only: production workers have no fault points."""

from __future__ import annotations

from followup.entrypoints import worker
from tests.followup.faults import FaultInjector

if __name__ == "__main__":
    worker.main(probe=FaultInjector.from_env())
