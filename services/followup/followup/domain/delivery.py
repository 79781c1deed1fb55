"""The delivery journal's rules: what a recorded outcome writes on a nudge,
what a dead sender's leftovers become, and when a send batch is due again.
Pure: the service layer loads the facts and stores the answers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from followup.domain.nudges import NudgeState, Transition

SENDING = "sending"
ACCEPTED = "accepted"


def journal_id(followup: str, attempt: int, step: str) -> str:
    """``<followup>:<attempt>:sending`` / ``...:accepted`` — unique per attempt and step."""
    return f"{followup}:{attempt}:{step}"


def outcome_fields(transition: Transition, now: datetime) -> dict[str, Any]:
    """The fields a non-sent outcome sets on its nudge."""
    state = transition.state
    fields: dict[str, Any] = {"state": state.value, "last_error": (transition.error or "")[:1000]}
    if state == NudgeState.RETRY:
        fields["send_at"] = transition.retry_at
        fields["claim"] = None
    elif state == NudgeState.DELIVERY_UNKNOWN:
        fields["unknown_at"] = now
    else:
        fields["failed_at"] = now
    if transition.bounce:
        fields.update(bounced_at=now, bounce_type="hard")
    return fields


def announces_failure(state: NudgeState) -> bool:
    """Whether the outcome publishes ``followup.failed``."""
    return state in (NudgeState.RETRY, NudgeState.FAILED, NudgeState.BOUNCED)


CRASH_DOUBT = "the sender stopped while handing this message to the transport; it may have been delivered"


@dataclass
class Leftovers:
    """A dead claim's nudges, sorted by what the journal says happened to their attempt."""

    accepted: list[tuple[dict[str, Any], Mapping[str, Any]]] = field(default_factory=list)  # (nudge, entry)
    in_doubt: list[dict[str, Any]] = field(default_factory=list)  # handed over, no answer recorded
    never_sent: list[dict[str, Any]] = field(default_factory=list)  # rendered, never handed over


def journal_ids_of(nudges: Iterable[Mapping[str, Any]]) -> list[str]:
    return [journal_id(n["_id"], int(n["attempts"]), step) for n in nudges for step in (SENDING, ACCEPTED)]


def sort_leftovers(nudges: Iterable[dict[str, Any]], journal: Mapping[str, Mapping[str, Any]]) -> Leftovers:
    """``accepted`` -> sent; ``sending`` without ``accepted`` -> in doubt (never resent
    automatically); no entry -> it never left, schedule it again."""
    found = Leftovers()
    for nudge in nudges:
        attempt = int(nudge["attempts"])
        done = journal.get(journal_id(nudge["_id"], attempt, ACCEPTED))
        if done is not None:
            found.accepted.append((nudge, done))
        elif journal_id(nudge["_id"], attempt, SENDING) in journal:
            found.in_doubt.append(nudge)
        else:
            found.never_sent.append(nudge)
    return found


def batch_after_claim(
    pending_send_times: list[datetime], now: datetime, not_before: datetime | None = None
) -> dict[str, Any]:
    """A released batch: ``ready`` again at its earliest pending nudge (not before
    ``not_before``), or ``done`` when none is pending."""
    if pending_send_times:
        due = min(pending_send_times)
        if not_before is not None:
            due = max(due, not_before)
        return {"state": "ready", "due_at": due}
    return {"state": "done", "finished_at": now}
