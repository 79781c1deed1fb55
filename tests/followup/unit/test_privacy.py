"""The personal-data rules, without a server: chunking an export part, what an
erasure keeps of a message, which later messages a tombstone turns away,
which correction wins, the data-link decision, retention cut-offs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from followup.domain.audience import ContactFacts, SendFacts, decide_at_send_time, missed_you_after_all
from followup.domain.consent import granted_by_registration, registration_source
from followup.domain.contacts import details_replace
from followup.domain.nudges import ALL_KINDS, NudgeKind, is_followup
from followup.domain.privacy import (
    EXPORT_CHUNK_CHARS,
    chunk_text,
    erase_introduction,
    erase_nudge,
    erased_key,
    part_json,
    turned_away,
)
from followup.domain.retention import Cutoffs, periods_of, replaces
from followup.domain.suppression import erased_suppression_id, suppression_ids
from followup.service_layer.messages import person_data_exported
from turnout_common.contracts import registry
from turnout_common.privacy import DEFAULT_RETENTION, email_digest, pseudonym

NOW = datetime(2026, 5, 2, 12, 0, tzinfo=UTC)


def test_a_part_is_cut_into_chunks_that_join_back_and_fit_a_kafka_record() -> None:
    part = {"messages": [{"text": 'Ευχαριστούμε "πολύ" \\ ' * 3000, "at": NOW} for _ in range(4)]}
    text = part_json(part)
    assert text.isascii()  # escaped: at most two bytes per character on the wire
    chunks = chunk_text(text)
    assert len(chunks) >= 2 and all(len(c) <= EXPORT_CHUNK_CHARS for c in chunks)
    assert json.loads("".join(chunks))["messages"][0]["at"] == "2026-05-02T12:00:00.000Z"
    for index, chunk in enumerate(chunks):
        envelope = person_data_exported("org-1", "req-1", index, len(chunks), chunk, NOW)
        registry().validate(envelope)
        assert len(envelope.to_json()) < 1_000_000
    assert chunk_text("") == [""]
    with pytest.raises(ValueError):
        chunk_text("x", 0)


def test_an_erased_message_names_the_stand_in_and_an_unsent_one_is_skipped_for_good() -> None:
    stand_in = pseudonym("org-1", "p-1")
    nudge = {"_id": "f1", "key": "ev-1|p-1|thank_you", "person_id": "p-1", "state": "scheduled", "attempts": 0}
    plan = erase_nudge(nudge, stand_in, NOW, handed_over=False)
    assert plan.set["key"] == f"ev-1|{stand_in}|thank_you" and plan.set["person_id"] == stand_in
    assert (plan.set["state"], plan.set["skip_reason"]) == ("skipped", "erased")
    assert "to_email" in plan.unset and "feedback_comment" in plan.unset and "clicked_urls" in plan.unset
    claimed = {**nudge, "state": "claimed", "attempts": 2}
    assert erase_nudge(claimed, stand_in, NOW, handed_over=False).fence_attempt == 2
    in_flight = erase_nudge(claimed, stand_in, NOW, handed_over=True)
    assert in_flight.in_flight and in_flight.fence_attempt is None and "state" not in in_flight.set
    sent = erase_nudge({**nudge, "state": "sent"}, stand_in, NOW, handed_over=False)
    assert "state" not in sent.set  # what was sent stays sent (the figures)
    assert erased_key("-|p-1|data_link|export:2026", "p-1", stand_in) == f"-|{stand_in}|data_link|export:2026"


def test_an_introduction_keeps_the_other_person_and_names_the_stand_in() -> None:
    doc = {
        "people": ["p-1", "p-2"],
        "offers": {"p-1": ["design"], "p-2": ["grant writing"]},
        "accepted_by": ["p-1"],
        "accepted_at": {"p-1": NOW},
        "state": "agreed",
    }
    stand_in = pseudonym("org-1", "p-1")
    changed = erase_introduction(doc, "p-1", stand_in, "pair")
    assert changed["people"] == [stand_in, "p-2"]
    assert changed["offers"] == {stand_in: [], "p-2": ["grant writing"]}
    assert changed["accepted_by"] == [stand_in] and changed["accepted_at"] == {stand_in: NOW}
    assert changed["state"] == "erased" and changed["state_before_erasure"] == "agreed"


def test_a_tombstone_turns_away_the_person_by_id_and_old_news_of_their_address() -> None:
    erased = {pseudonym("org-1", "p-1")}
    digest = email_digest("org-1", "ann@example.org")
    by_email = {digest: NOW}

    def away(person: str | None, address: str | None, at: datetime | None) -> bool:
        return turned_away(
            person_id=person,
            org_id="org-1",
            email_digest=address,
            message_time=at,
            erased_ids=erased,
            by_email=by_email,
        )

    assert away("p-1", None, NOW + timedelta(days=1))  # by id: always
    assert away(pseudonym("org-1", "p-1"), None, None)  # a stand-in is nobody to write to
    assert not away("p-2", None, NOW)
    assert away("p-2", digest, NOW - timedelta(days=1))  # a replayed registration of the address
    assert not away("p-2", digest, NOW + timedelta(days=1))  # a new registration after the erasure
    assert not turned_away(
        person_id="p-1", org_id="org-2", email_digest=None, message_time=NOW, erased_ids=erased, by_email={}
    )


def test_suppression_keys_cover_an_erased_persons_digest() -> None:
    plain, digest = suppression_ids("org-1", "Ann@Example.org")
    assert plain == "org-1:ann@example.org"
    assert digest == erased_suppression_id("org-1", "ann@example.org") and "ann" not in digest


def test_the_newer_correction_wins() -> None:
    assert details_replace(None, NOW)
    assert details_replace(NOW, NOW)
    assert details_replace(NOW, NOW + timedelta(seconds=1))
    assert not details_replace(NOW, NOW - timedelta(seconds=1))


def test_consent_is_granted_by_a_registration_only_when_it_changes() -> None:
    assert granted_by_registration(None, True)
    assert not granted_by_registration({"consent_email": True}, True)
    assert not granted_by_registration({"consent_email": False}, False)
    assert [registration_source(s) for s in ("import", "walk-in", "api", "public", None)] == [
        "import",
        "walk-in",
        "registration",
        "registration",
        "registration",
    ]


def _link_facts(**changes: object) -> SendFacts:
    values: dict[str, object] = {
        "kind": NudgeKind.DATA_LINK,
        "contact": ContactFacts(email="ann@example.org", consent=False, unsubscribed=True),
        "enabled": False,
        "event_kind": None,
        "attendance": None,
        "send_at": NOW,
        "next_window_opening": NOW + timedelta(hours=8),  # the middle of the night
        "expires_at": NOW + timedelta(hours=1),
    }
    values.update(changes)
    return SendFacts(**values)  # type: ignore[arg-type]


def test_the_data_link_goes_out_whatever_the_consent_hour_and_switches_but_not_to_a_blocked_address() -> None:
    assert decide_at_send_time(_link_facts(), NOW).action == "send"
    blocked = _link_facts(contact=ContactFacts(email="ann@example.org", consent=True, suppressed=True))
    assert decide_at_send_time(blocked, NOW).reason == "suppressed"
    assert decide_at_send_time(_link_facts(), NOW + timedelta(hours=2)).reason == "link_expired"
    assert decide_at_send_time(_link_facts(contact=None), NOW).reason == "no_contact"
    assert NudgeKind.DATA_LINK not in ALL_KINDS and not is_followup("data_link") and is_followup("thank_you")


def test_after_an_undone_checkin_no_we_missed_you_follows_a_thank_you_that_went_out() -> None:
    assert missed_you_after_all(NudgeKind.WE_MISSED_YOU, None)
    assert missed_you_after_all(NudgeKind.WE_MISSED_YOU, "skipped")
    assert not missed_you_after_all(NudgeKind.WE_MISSED_YOU, "sent")
    assert not missed_you_after_all(NudgeKind.WE_MISSED_YOU, "claimed")
    assert missed_you_after_all(NudgeKind.THANK_YOU, "sent")


def test_retention_cutoffs_and_the_newest_policy() -> None:
    cutoffs = Cutoffs.of(periods_of(None), NOW)
    assert periods_of(None) == DEFAULT_RETENTION
    assert cutoffs.message_bodies == datetime(2025, 11, 2, 12, 0, tzinfo=UTC)
    assert cutoffs.delivery_journal == cutoffs.tracking_events == datetime(2025, 5, 2, 12, 0, tzinfo=UTC)
    assert periods_of({"periods": {"message_bodies": 1}}).message_bodies == 1
    assert periods_of({"periods": {"message_bodies": 0}}) == DEFAULT_RETENTION  # unusable: the defaults
    assert replaces(None, NOW) and replaces({"set_at": NOW}, NOW)
    assert not replaces({"set_at": NOW}, NOW - timedelta(seconds=1))
