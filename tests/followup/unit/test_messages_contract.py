"""Every message follow-up publishes passes its contract (the producer side)."""

from __future__ import annotations

from datetime import UTC, datetime

from followup.service_layer import messages
from turnout_common.contracts import registry

NOW = datetime(2026, 5, 2, 10, 0, tzinfo=UTC)
NUDGE = {
    "_id": "0123456789abcdef0123456789abcdef",
    "org_id": "o1",
    "event_id": "e1",
    "anchor_event_id": "e1",
    "person_id": "p1",
    "kind": "thank_you",
    "send_at": NOW,
}
WIN_BACK = {**NUDGE, "event_id": None, "kind": "win_back"}
INTRO = {"_id": "i1", "org_id": "o1", "event_id": "e1", "people": ["p1", "p2"]}


def test_all_producers_pass_their_contracts() -> None:
    contracts = registry()
    built = [
        messages.followup_scheduled(NUDGE, NOW),
        messages.followup_scheduled(WIN_BACK, NOW),
        messages.followup_sent(NUDGE, NOW, "smtp"),
        messages.followup_failed(NUDGE, NOW, "451 later", False, 1),
        messages.followup_failed(NUDGE, NOW, "x" * 5000, True, 3),
        messages.followup_bounced("o1", "p1", NUDGE, NOW, "hard", "550 user unknown"),
        messages.followup_bounced("o1", "p1", None, NOW, "soft", "mailbox full"),
        messages.followup_opened(NUDGE, NOW),
        messages.followup_clicked(NUDGE, NOW, "https://example.org/x"),
        messages.feedback_submitted(NUDGE, NOW, 5, None),
        messages.feedback_submitted(WIN_BACK, NOW, 1, "meh"),
        messages.contact_unsubscribed("o1", "p1", NOW, "one_click"),
        messages.introduction_accepted(INTRO, "p2", NOW, True),
    ]
    for envelope in built:
        contracts.validate(envelope)
        assert envelope.subject == "p1" or envelope.subject == "p2"


def test_lifecycle_messages_have_stable_ids() -> None:
    assert messages.followup_sent(NUDGE, NOW, "smtp").id == messages.followup_sent(NUDGE, NOW, "smtp").id
    assert messages.followup_scheduled(NUDGE, NOW).id != messages.followup_sent(NUDGE, NOW, "smtp").id
    first = messages.followup_failed(NUDGE, NOW, "x", False, 1)
    assert first.id != messages.followup_failed(NUDGE, NOW, "x", False, 2).id
