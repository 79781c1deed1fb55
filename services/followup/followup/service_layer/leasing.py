"""Send batches under a lease: claiming one that is due, keeping the lease
while sending, giving it back, and taking over batches whose sender died."""

from __future__ import annotations

import random
import time
import uuid
from datetime import datetime

from followup.domain.delivery import batch_after_claim
from followup.service_layer.context import Services
from followup.service_layer.outcomes import count_outcomes, settle_from_journal

CANDIDATES = 8  # due batches a sender picks from (shuffled, so senders rarely collide)
RECOVER_AT_ONCE = 50


class BatchLease:
    """One sender's leases: claim a due batch, renew while working (at most every
    third of the lease), release."""

    def __init__(self, svc: Services, owner: str, rng: random.Random | None = None) -> None:
        self.svc = svc
        self.owner = owner
        self._rng = rng or random.Random()
        self._renew_at = 0.0

    def claim(self, now: datetime) -> tuple[str, str] | None:
        """A due batch and this claim's token, or None when nothing is due (or all were taken)."""
        candidates = self.svc.store.batches.due(now, CANDIDATES)
        # Several senders start from different candidates, so they rarely collide.
        self._rng.shuffle(candidates)
        for batch_id in candidates:
            token = f"{self.owner}:{uuid.uuid4().hex[:12]}"
            if self.svc.store.batches.claim(batch_id, token, now, now + self.svc.lease):
                self._renew_at = time.monotonic() + self.svc.settings.lease_seconds / 3
                return batch_id, token
        return None

    def keep(self, batch_id: str, token: str) -> bool:
        """Still ours? Renews the lease when a third of it has passed."""
        if time.monotonic() < self._renew_at:
            return True
        if not self.svc.store.batches.renew(batch_id, token, self.svc.now() + self.svc.lease):
            return False
        self._renew_at = time.monotonic() + self.svc.settings.lease_seconds / 3
        return True


def release_batch(svc: Services, batch_id: str, token: str, not_before: datetime | None = None) -> None:
    """End a claim: ``ready`` again when nudges are still pending (due at the earliest), else ``done``."""
    pending = svc.store.nudges.pending_send_times(batch_id)
    svc.store.batches.release(batch_id, token, batch_after_claim(pending, svc.now(), not_before))


def recover_abandoned_batches(svc: Services, now: datetime) -> int:
    """Take over batches whose sender died (lease expired) and settle their nudges."""
    recovered = 0
    for batch in svc.store.batches.expired(now, RECOVER_AT_ONCE):
        token = f"recovery:{uuid.uuid4().hex[:12]}"
        if not svc.store.batches.take_over(batch["_id"], batch["lease_owner"], token, now + svc.lease):
            continue
        count_outcomes(svc, settle_from_journal(svc, batch["_id"], batch["lease_owner"], now))
        release_batch(svc, batch["_id"], token)
        recovered += 1
    return recovered
