"""checkin's rules for a person's data (``checkin.domain.privacy``): correcting a
person, data requests and their completeness, export parts in chunks and their
summary, what an erasure leaves of a registration, self-service links and who
counts as inactive. Pure: no database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from checkin.domain import privacy as rules
from checkin.domain.model import RuleBroken
from turnout_common.privacy import ERASED_NAME, email_digest, pseudonym

NOW = datetime(2026, 5, 1, 18, 0, tzinfo=UTC)


def person(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": "p-ada",
        "org_id": "org-1",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "name_folded": "ada lovelace",
        "email": "Ada@Example.org",
        "email_norm": "ada@example.org",
        "visits": 2,
        "created_at": NOW - timedelta(days=40),
        "last_seen_at": NOW - timedelta(days=3),
    }
    doc.update(changes)
    return doc


def registration(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": "r-1",
        "org_id": "org-1",
        "event_id": "e-1",
        "person_id": "p-ada",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "name_folded": "ada lovelace",
        "email_hint": "a…e@e…",
        "status": "registered",
        "badge_code": "secret-badge-code",
        "consent_email": True,
        "offers": ["analytical engines"],
        "seeks": ["funding"],
        "source": "walk-in",
        "registered_at": NOW - timedelta(days=3, hours=1),
        "walkin_answers": {"how_did_you_hear": "from Charles Babbage"},
        "cancel_reason": None,
        "checkin": {
            "method": "walk-in",
            "kiosk_id": "k-1",
            "scanned_at": NOW - timedelta(days=3),
            "received_at": NOW - timedelta(days=3),
            "override": False,
            "actor_id": None,
            "device": "iPad of Ada",
        },
        "checkout": None,
    }
    doc.update(changes)
    return doc


# -- correction ------------------------------------------------------------------------------------------


def test_a_name_correction_updates_the_person_and_their_registrations_copies() -> None:
    change = rules.correction(person(), {"first_name": "  Augusta  Ada ", "last_name": "King"})
    assert change.fields == ("first_name", "last_name")
    assert change.person_changes == {
        "first_name": "Augusta Ada",
        "last_name": "King",
        "name_folded": "augusta ada king",
    }
    assert change.registration_changes == change.person_changes
    assert change.previous_email is None and not change.email_changed


def test_an_email_correction_names_the_address_it_replaces() -> None:
    change = rules.correction(person(), {"email": "ada.king@example.org"})
    assert change.fields == ("email",)
    assert change.person_changes == {"email": "ada.king@example.org", "email_norm": "ada.king@example.org"}
    assert change.registration_changes == {"email_hint": "a…g@e…"}
    assert change.previous_email == "Ada@Example.org"


def test_the_same_values_change_nothing() -> None:
    change = rules.correction(person(), {"first_name": "Ada", "last_name": "Lovelace", "email": "Ada@Example.org"})
    assert change.fields == () and change.person_changes == {} and change.registration_changes == {}


@pytest.mark.parametrize(
    ("wanted", "field"),
    [
        ({"first_name": "   "}, "first_name"),
        ({"first_name": "x" * 101}, "first_name"),
        ({"last_name": "y" * 101}, "last_name"),
        ({"email": "not an address"}, "email"),
        ({"email": "ada@localhost"}, "email"),
        ({"first_name": "Ada\x00"}, "first_name"),
        ({"first_name": 7}, "first_name"),
    ],
)
def test_a_bad_correction_names_the_field(wanted: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleBroken) as refused:
        rules.correction(person(), wanted)
    assert refused.value.code == "invalid_field" and refused.value.field == field


# -- data requests ---------------------------------------------------------------------------------------


def test_a_request_is_complete_once_every_service_answered() -> None:
    request = rules.new_request(
        "dr-1", "org-1", "export", "p-ada", rules.requested_by("user", "u-1"), NOW, rules.done(NOW, summary={})
    )
    assert request["requested_by"] == {"kind": "user", "user_id": "u-1"}
    assert request["status"] == rules.WORKING and "link_nonce" not in request
    assert [rules.has_answered(request, s) for s in rules.SERVICES] == [True, False, False]
    assert not rules.is_complete(request)
    request["services"]["followup"] = rules.done(NOW, summary={"counts": {}})
    assert not rules.is_complete(request)
    request["services"]["analytics"] = rules.failed(NOW, "the part is not valid JSON")
    assert rules.is_complete(request)


def test_who_may_ask() -> None:
    assert rules.requested_by("person") == {"kind": "person"}
    assert rules.requested_by("retention", "ignored") == {"kind": "retention"}
    with pytest.raises(ValueError):
        rules.requested_by("robot")
    with pytest.raises(ValueError):
        rules.new_request("dr", "o", "delete", "p", {"kind": "user"}, NOW, {})


# -- parts in chunks --------------------------------------------------------------------------------------


def test_a_part_split_in_chunks_joins_back_in_order_whatever_order_they_came_in() -> None:
    text = rules.part_text({"messages": [{"subject": "Thanks, Ada ✨", "body": "x" * 450_000}]})
    chunks = rules.chunk_docs("dr-1", "org-1", "followup", text, NOW)
    assert len(chunks) == 3 and all(len(chunk["chunk"]) <= rules.CHUNK_CHARS for chunk in chunks)
    assert [chunk["_id"] for chunk in chunks] == ["dr-1:followup:0", "dr-1:followup:1", "dr-1:followup:2"]
    assert rules.joined(list(reversed(chunks))) == text
    assert rules.parse_part(text)["messages"][0]["subject"] == "Thanks, Ada ✨"


def test_a_part_with_a_missing_or_inconsistent_chunk_is_not_joined() -> None:
    chunks = rules.chunk_docs("dr-1", "org-1", "analytics", "a" * 450_000, NOW)
    assert rules.joined(chunks[:2]) is None
    assert rules.joined([]) is None
    odd = {**chunks[2], "chunk_count": 4}
    assert rules.joined([*chunks[:2], odd]) is None
    assert rules.split_text("") == [""]


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"a string"', "[" * 100_000])
def test_a_part_that_is_not_one_json_object_is_unreadable(text: str) -> None:
    with pytest.raises(rules.PartUnreadable):
        rules.parse_part(text)


def test_a_summary_counts_each_list_and_names_its_first_items() -> None:
    part = {
        "contact": {"email": "ada@example.org"},
        "messages": [
            {"nudge": "thank_you", "sent_at": "2026-05-02T09:00:00.000Z"},
            {"subject": "We missed you"},
            {"nothing": None},
        ]
        + [{"nudge": f"n{i}"} for i in range(6)],
        "ratings": [],
        "tags": ["design", "grants"],
        "service": "followup",
    }
    summary = rules.summary(part)
    assert summary["counts"] == {"contact": 1, "messages": 9, "ratings": 0, "tags": 2}
    assert summary["items"]["messages"] == ["thank_you (2026-05-02)", "We missed you", "n0", "n1"]
    assert summary["items"]["tags"] == ["design", "grants"]
    assert "ratings" not in summary["items"]


def test_checkin_part_holds_the_person_their_events_and_check_ins_as_json() -> None:
    event = {"_id": "e-1", "title": "Harbour clean-up", "kind": "volunteer_shift", "starts_at": NOW, "venue": "Pier 4"}
    entries = [{"at": NOW, "action": "person.corrected", "actor": {"kind": "user", "label": "Grace"}}]
    earlier = [{"_id": "dr-0", "kind": "export", "requested_at": NOW - timedelta(days=1)}]
    part = rules.checkin_part(person(), [registration()], {"e-1": event}, entries, earlier)
    text = json.dumps(part)  # every value is JSON
    assert part["person"]["email"] == "Ada@Example.org" and part["person"]["visits"] == 2
    reg = part["registrations"][0]
    assert reg["event_title"] == "Harbour clean-up" and reg["event_starts_at"] == "2026-05-01T18:00:00.000Z"
    assert reg["checked_in"]["method"] == "walk-in" and reg["offers"] == ["analytical engines"]
    assert part["audit_entries"] == [{"at": "2026-05-01T18:00:00.000Z", "action": "person.corrected", "by": "Grace"}]
    assert part["data_requests"][0]["id"] == "dr-0"
    summary = rules.summary(part)
    assert summary["counts"]["registrations"] == 1
    assert summary["items"]["registrations"] == ["Harbour clean-up (2026-05-01)"]
    assert "Lovelace" in text


# -- erasure ---------------------------------------------------------------------------------------------------


def test_an_erased_registration_keeps_the_counts_and_nothing_personal() -> None:
    stand_in = pseudonym("org-1", "p-ada")
    original = registration(cancel_reason="Ada's cat was ill")
    kept = rules.erased_registration(original, stand_in, "erased-fresh-code", NOW)
    assert kept["person_id"] == stand_in and kept["badge_code"] == "erased-fresh-code"
    assert kept["status"] == "registered" and kept["source"] == "walk-in"
    assert kept["registered_at"] == original["registered_at"]
    assert kept["checkin"] == {
        "method": "walk-in",
        "kiosk_id": "k-1",
        "scanned_at": original["checkin"]["scanned_at"],
        "received_at": original["checkin"]["received_at"],
        "override": False,
    }
    assert kept["first_name"] == ERASED_NAME and kept["last_name"] == "" and kept["offers"] == kept["seeks"] == []
    text = json.dumps(kept, default=str).lower()
    for trace in ("ada", "lovelace", "example.org", "p-ada", "secret-badge-code", "babbage", "ipad", "cat"):
        assert trace not in text, trace


def test_a_tombstone_keeps_no_id_name_or_address() -> None:
    stone = rules.tombstone("org-1", "p-ada", "ada@example.org", NOW, "dr-9")
    assert stone == {
        "_id": pseudonym("org-1", "p-ada"),
        "org_id": "org-1",
        "email_digest": email_digest("org-1", "ada@example.org"),
        "erased_at": NOW,
        "request_id": "dr-9",
    }
    assert "ada" not in json.dumps(stone, default=str)


def test_import_reports_lose_the_erased_persons_rows_only() -> None:
    problems = [
        {"row": 2, "reason": "duplicate", "email": " ADA@example.org", "name": "Ada Lovelace"},
        {"row": 3, "reason": "duplicate", "email": "grace@example.org", "name": "Grace Hopper"},
    ]
    scrubbed, changed = rules.scrubbed_problems(problems, "ada@example.org")
    assert changed == 1
    assert scrubbed[0] == {"row": 2, "reason": "duplicate", "email": ERASED_NAME, "name": ERASED_NAME}
    assert scrubbed[1] == problems[1]


# -- self-service links ------------------------------------------------------------------------------------


def test_a_link_carries_its_claims_until_it_expires() -> None:
    link = rules.Link("org-1", "p-ada", "erasure", "nonce-1", NOW + rules.LINK_LIFETIME)
    claims = rules.link_claims(link)
    assert rules.read_link(claims, NOW) == link
    assert rules.read_link(claims, NOW + timedelta(hours=23, minutes=59)).purpose == "erasure"
    with pytest.raises(rules.LinkRefused) as expired:
        rules.read_link(claims, NOW + timedelta(hours=24))
    assert expired.value.reason == "expired"


@pytest.mark.parametrize(
    "claims",
    [
        None,
        [],
        {"o": "org-1", "p": "p-ada", "u": "erasure", "n": "x"},
        {"o": "org-1", "p": "p-ada", "u": "delete", "n": "x", "x": 2_000_000_000},
        {"o": "", "p": "p-ada", "u": "export", "n": "x", "x": 2_000_000_000},
        {"o": "org-1", "p": "p-ada", "u": "export", "n": "x", "x": True},
        {"o": "org-1", "p": "p-ada", "u": "export", "n": "x", "x": "tomorrow"},
    ],
)
def test_a_malformed_link_is_invalid(claims: Any) -> None:
    with pytest.raises(rules.LinkRefused) as refused:
        rules.read_link(claims, NOW)
    assert refused.value.reason == "invalid"


def test_a_second_link_for_the_same_purpose_waits_a_few_minutes() -> None:
    assert rules.may_send_link(person(), "export", NOW)
    sent = person(data_link_sent_at={"export": (NOW - timedelta(minutes=1)).replace(tzinfo=None)})
    assert not rules.may_send_link(sent, "export", NOW)
    assert rules.may_send_link(sent, "erasure", NOW)
    assert rules.may_send_link(sent, "export", NOW + rules.LINK_RESEND_AFTER)


# -- inactive people ------------------------------------------------------------------------------------------


def test_inactive_means_no_registration_visit_or_first_sighting_since_the_cutoff() -> None:
    cutoff = NOW - timedelta(days=30)
    old = person(created_at=NOW - timedelta(days=400), last_seen_at=None)
    assert rules.is_inactive(old, cutoff, set())
    assert not rules.is_inactive(old, cutoff, {"p-ada"})  # registered or checked in since
    assert not rules.is_inactive(person(created_at=(NOW - timedelta(days=10)).replace(tzinfo=None)), cutoff, set())
    assert not rules.is_inactive(old | {"last_seen_at": NOW - timedelta(days=29)}, cutoff, set())
    assert rules.is_inactive(old | {"last_seen_at": NOW - timedelta(days=31)}, cutoff, set())


def test_a_registration_counts_as_activity_when_made_or_checked_in_since_the_cutoff() -> None:
    cutoff = NOW - timedelta(days=30)
    assert rules.active_since(registration(registered_at=NOW - timedelta(days=1), checkin=None), cutoff)
    assert rules.active_since(registration(registered_at=NOW - timedelta(days=90)), cutoff)  # checked in 3 days ago
    assert not rules.active_since(registration(registered_at=NOW - timedelta(days=90), checkin=None), cutoff)
    naive = (NOW - timedelta(days=2)).replace(tzinfo=None)  # as MongoDB hands times back
    assert rules.active_since(registration(registered_at=naive, checkin=None), cutoff)


def test_checkin_part_holds_the_reviews_of_hours_and_the_off_site_hours_logged() -> None:
    review = {"state": "adjusted", "hours": 2.5, "reason": "left early", "at": NOW, "by": {"label": "Grace"}}
    reg = {**registration(), "checkout": {"received_at": NOW, "hours": 3.0}, "hours_review": review}
    entry = {"date": "2026-04-30", "hours": 2.0, "note": "flyers", "logged_at": NOW, "review": None}
    part = rules.checkin_part(person(), [reg], {}, [], [], [entry])
    assert part["registrations"][0]["checked_out"]["review"] == {
        "state": "adjusted",
        "hours": 2.5,
        "reason": "left early",
        "at": "2026-05-01T18:00:00.000Z",
    }
    assert part["off_site_hours"] == [
        {"date": "2026-04-30", "hours": 2.0, "note": "flyers", "logged_at": "2026-05-01T18:00:00.000Z", "review": None}
    ]
