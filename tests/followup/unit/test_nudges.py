"""Nudge identity and the sending state machine's transitions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from followup.domain.mail import Accepted, InDoubt, NotSent, Rejected, classify_smtp_reply
from followup.domain.nudges import (
    NudgeKind,
    NudgeState,
    RetryPolicy,
    after_attempt,
    after_lease_expired,
    display_status,
    followup_from_message_id,
    followup_id,
    message_id,
    nudge_key,
)

NOW = datetime(2026, 5, 2, 10, 0, tzinfo=UTC)
POLICY = RetryPolicy(base_seconds=60, max_seconds=3600, max_attempts=4)


def test_one_identity_per_gathering_person_and_kind() -> None:
    key = nudge_key("e1", "p1", NudgeKind.THANK_YOU)
    assert key == "e1|p1|thank_you"
    assert followup_id(key) == followup_id("e1|p1|thank_you")
    assert followup_id(key) != followup_id(nudge_key("e1", "p1", NudgeKind.WE_MISSED_YOU))
    assert nudge_key(None, "p1", NudgeKind.WIN_BACK, "e9") == "-|p1|win_back|e9"
    fid = followup_id(key)
    assert len(fid) == 32
    mid = message_id(fid, "mail.example.org")
    assert mid == f"<{fid}@mail.example.org>"
    assert followup_from_message_id(mid) == fid
    assert followup_from_message_id("<random@elsewhere>") is None


def test_transitions_after_an_attempt() -> None:
    rng = random.Random(1)
    assert after_attempt(Accepted("250 ok"), 1, NOW, POLICY, rng).state == NudgeState.SENT
    doubt = after_attempt(InDoubt("timeout after DATA"), 1, NOW, POLICY, rng)
    assert doubt.state == NudgeState.DELIVERY_UNKNOWN
    temporary = after_attempt(Rejected("451 later", permanent=False), 1, NOW, POLICY, rng)
    assert temporary.state == NudgeState.RETRY and temporary.retry_at is not None
    assert NOW + timedelta(seconds=48) <= temporary.retry_at <= NOW + timedelta(seconds=72)
    second = after_attempt(NotSent("connection reset"), 2, NOW, POLICY, rng)
    assert second.retry_at is not None and second.retry_at >= NOW + timedelta(seconds=96)
    gave_up = after_attempt(NotSent("connection reset"), 4, NOW, POLICY, rng)
    assert gave_up.state == NudgeState.FAILED and gave_up.permanent
    hard = after_attempt(Rejected("550 no such user", permanent=True, recipient=True), 1, NOW, POLICY, rng)
    assert hard.state == NudgeState.BOUNCED and hard.suppress_address and hard.bounce and hard.permanent
    content = after_attempt(Rejected("554 spam", permanent=True), 1, NOW, POLICY, rng)
    assert content.state == NudgeState.FAILED and not content.suppress_address


def test_lease_expiry_never_resends_what_may_have_left() -> None:
    assert after_lease_expired(NudgeState.CLAIMED) == NudgeState.SCHEDULED
    assert after_lease_expired(NudgeState.SENDING) == NudgeState.DELIVERY_UNKNOWN
    assert after_lease_expired(NudgeState.SENT) == NudgeState.SENT


def test_smtp_replies() -> None:
    rcpt = classify_smtp_reply(550, "5.1.1 <x@y>: user unknown", "rcpt")
    assert rcpt.permanent and rcpt.recipient
    assert not classify_smtp_reply(451, "4.7.1 greylisted", "rcpt").permanent
    data = classify_smtp_reply(554, "5.7.1 message rejected as spam", "data")
    assert data.permanent and not data.recipient
    assert classify_smtp_reply(550, "5.1.1 mailbox unavailable", "data").recipient
    assert classify_smtp_reply(550, "5.2.1 mailbox disabled", "data").recipient
    assert not classify_smtp_reply(552, "5.2.2 mailbox full", "data").recipient


def test_status_shown_to_organizers() -> None:
    assert display_status("sent") == "sent"
    assert display_status("sent", opened=True) == "opened"
    assert display_status("sent", opened=True, clicked=True) == "clicked"
    assert display_status("sent", bounced=True, opened=True) == "bounced"
    assert display_status("sending") == "sending" and display_status("claimed") == "sending"
    assert display_status("delivery_unknown") == "delivery_unknown"
