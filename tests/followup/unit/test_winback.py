"""Win-back drafts on the in-memory fakes and as pure rules: who is at risk (the same
rule as analytics' list), how often, the approval gate, the note, the funnel."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from analytics.domain import reports
from followup.adapters.rendering import JinjaRenderer
from followup.config import Settings
from followup.domain.nudges import PENDING, NudgeState
from followup.domain.settings import FollowupSettings, WinBackRule
from followup.domain.winback import (
    AttendanceHistory,
    PastVisit,
    WinbackMode,
    compose_note,
    cooled_down,
    describe_habit,
    draft_refusal,
    edit_refusal,
    first_state,
    funnel,
    mode_of,
    regulars_at_risk,
)
from followup.service_layer import winback
from followup.service_layer.context import Services
from followup.service_layer.handlers import apply_checkin_messages
from followup.service_layer.scheduling import scan_win_back
from followup.service_layer.sending import send_due_nudges
from followup.service_layer.tracking import NotFound
from tests.followup.helpers import Gathering
from tests.followup.unit.fakes import FakeStore, FakeTransactions, FakeTransport, fake_services
from turnout_common.envelope import Envelope
from turnout_common.regulars import typical_gap_days

NOW = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)


def visits(last_days_ago: float, count: int, every_days: float) -> tuple[datetime, ...]:
    last = NOW - timedelta(days=last_days_ago)
    return tuple(last - timedelta(days=every_days * n) for n in reversed(range(count)))


def history(person: str, times: tuple[datetime, ...]) -> AttendanceHistory:
    return AttendanceHistory(person, "org", len(times), max(times), f"e-{person}", times)


CASES = {
    "weekly-gone-50d": visits(50, 6, 7),  # at risk: past 45 days, past twice a week
    "weekly-gone-30d": visits(30, 6, 7),  # not yet: under the 45-day floor
    "monthly-gone-50d": visits(50, 5, 30),  # not yet: under twice their usual 30 days
    "monthly-gone-70d": visits(70, 5, 30),  # at risk
    "twice-gone-90d": visits(90, 2, 7),  # not a regular
    "gone-400d": visits(400, 8, 7),  # lost, not at risk
}


def test_at_risk_is_the_same_rule_as_analytics() -> None:
    people = [history(p, t) for p, t in CASES.items()]
    found = {r.history.person_id for r in regulars_at_risk(people, WinBackRule(), NOW)}
    assert found == {"weekly-gone-50d", "monthly-gone-70d"}
    for person, times in CASES.items():
        analytics = reports.at_risk(len(times), max(times), typical_gap_days(times), NOW, [])
        assert (analytics is not None) == (person in found), person


def test_the_organizations_own_numbers() -> None:
    rule = WinBackRule(min_events=6, quiet_days=60, max_quiet_days=365)
    found = regulars_at_risk([history(p, t) for p, t in CASES.items()], rule, NOW)
    assert [r.history.person_id for r in found] == []  # 6 visits, but only 50 days quiet
    (risk,) = regulars_at_risk([history("w", visits(61, 6, 7))], rule, NOW)
    assert (risk.days_quiet, risk.usual_gap_days, risk.threshold_days) == (61, 7.0, 60)


def test_approval_is_the_default_and_a_draft_is_never_picked_up() -> None:
    assert mode_of(WinBackRule(), switched_on=True) == WinbackMode.APPROVAL
    assert mode_of(WinBackRule(mode="automatic"), switched_on=True) == WinbackMode.AUTOMATIC
    assert mode_of(WinBackRule(mode="automatic"), switched_on=False) == WinbackMode.OFF
    assert first_state(WinbackMode.APPROVAL) == NudgeState.DRAFT
    assert first_state(WinbackMode.AUTOMATIC) == NudgeState.SCHEDULED
    assert NudgeState.DRAFT not in PENDING  # no sender ever claims a draft
    settings = FollowupSettings.from_docs(
        {"win_back": {"mode": "off"}}, None, fallback_name="Org", introductions_per_person=3, win_back=WinBackRule()
    )
    assert not settings.enabled("win_back") and settings.enabled("thank_you")


def test_at_most_one_per_cooldown() -> None:
    assert cooled_down([], NOW, 90)
    assert cooled_down([NOW - timedelta(days=91)], NOW, 90)
    assert not cooled_down([NOW - timedelta(days=91), NOW - timedelta(days=10)], NOW, 90)


def tuesday(weeks_ago: int) -> datetime:
    # 2026-10-06 was a Tuesday.
    return datetime(2026, 10, 6, 18, 0) - timedelta(weeks=weeks_ago)


def test_the_note_says_what_they_used_to_come_to() -> None:
    shifts = [PastVisit("Food bank shift", "volunteer_shift", tuesday(n)) for n in range(4)]
    assert describe_habit(shifts) == "the Tuesday food bank shifts"
    mixed = [PastVisit(f"Workshop {n}", "workshop", tuesday(n) + timedelta(days=n)) for n in range(3)]
    assert describe_habit(mixed) == "the workshops"
    named = [PastVisit("Open Mic Night", "social", tuesday(n) + timedelta(days=2 * n)) for n in range(3)]
    assert describe_habit(named) == "the Open Mic Nights"
    assert describe_habit([]) == "our gatherings"
    subject, body = compose_note("Jo", "Eastside Pantry", shifts, datetime(2026, 12, 6, 9, 0))
    assert subject == "We've missed you, Jo"
    assert body.startswith("We've missed you at the Tuesday food bank shifts since October. You came 4 times")
    assert "Eastside Pantry" in body


def test_edits_and_states_that_are_refused() -> None:
    assert edit_refusal("Hello", "A note") is None
    assert edit_refusal(" ", "A note") == ("subject", "the subject must not be empty")
    assert edit_refusal("Hello", "x" * 5001) == ("body", "the note must be at most 5000 characters")
    assert draft_refusal("draft", "approve") is None
    assert draft_refusal("scheduled", "approve") == "this win-back is no longer a draft (scheduled): nothing to approve"
    assert draft_refusal("skipped", "edit") == "this win-back was already discarded or skipped: nothing to edit"


def test_the_funnel() -> None:
    docs = [
        {"_id": "a", "state": "draft"},
        {"_id": "b", "state": "skipped", "discarded_at": NOW},
        {"_id": "c", "state": "scheduled", "approved_at": NOW},
        {"_id": "d", "state": "sent", "approved_at": NOW, "sent_at": NOW},
        {"_id": "e", "state": "sent", "approved_at": NOW, "sent_at": NOW},
    ]
    assert funnel(docs, {"e"}).as_dict() == {
        "drafted": 5,
        "approved": 3,
        "sent": 2,
        "came_back": 1,
        "waiting": 1,
        "discarded": 1,
    }


# -- the use cases on the fakes -----------------------------------------------------------------


@pytest.fixture
def wired(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Services, FakeStore, FakeTransactions, FakeTransport]]:
    for key, value in {
        "FOLLOWUP_WINDOW_START": "00:00",
        "FOLLOWUP_WINDOW_END": "24:00",
        "TURNOUT_PUBLIC_URL_FOLLOWUP": "https://followup.example.org",
    }.items():
        monkeypatch.setenv(key, value)
    transport = FakeTransport()
    svc, store, transactions = fake_services(
        Settings.from_env(), clock=lambda: NOW, transport=transport, renderer=JinjaRenderer()
    )
    yield svc, store, transactions, transport


def regular(person: str, name: str, weeks: int = 3, consent: bool = True) -> list[Envelope]:
    messages: list[Envelope] = []
    for week in range(weeks):
        g = Gathering(
            "org-1",
            kind="volunteer_shift",
            title="Food bank shift",
            timezone="America/Chicago",
            starts_at=tuesday(week).replace(tzinfo=UTC),
        )
        messages += [g.scheduled(status="ended"), g.registered(person, name, f"{person}@example.org", consent=consent)]
        messages.append(g.checked_in(person))
    return messages


def test_drafted_approved_sent_once(wired: tuple[Services, FakeStore, FakeTransactions, FakeTransport]) -> None:
    svc, _, transactions, transport = wired
    messages = regular("p-jo", "Jo") + regular("p-al", "Al") + regular("p-no", "No", consent=False)
    svc.transaction(lambda tx: apply_checkin_messages(tx, messages))
    assert scan_win_back(svc, NOW, force=True) == 2  # no draft for someone who may not be emailed
    assert scan_win_back(svc, NOW, force=True) == 0  # one per drift
    assert "followup.scheduled" not in transactions.types()  # a draft is not announced
    overview = winback.overview(svc, "org-1")
    assert overview["mode"] == "approval"
    jo = next(d for d in overview["drafts"] if d["person_id"] == "p-jo")
    assert jo["subject"] == "We've missed you, Jo"
    assert "Tuesday food bank shifts since October" in jo["body"]
    assert jo["why"]["visits"] == 3 and jo["why"]["days_quiet"] == 60
    assert send_due_nudges(svc).sent == 0 and transport.delivered == []  # nothing before approval

    winback.edit(svc, "org-1", jo["id"], "Come back, Jo", "We saved you a seat.", "user:u1 Ann")
    done = winback.approve(svc, "org-1", [jo["id"], "nope"], "user:u1 Ann")
    assert done["approved"] == [jo["id"]]
    assert (done["refused"], done["not_found"]) == ([], 1)
    assert transactions.types().count("followup.scheduled") == 1
    assert send_due_nudges(svc).sent == 1
    assert [m.subject for m in transport.delivered] == ["Come back, Jo"]
    assert "We saved you a seat." in transport.delivered[0].text
    assert '<p style="margin:0 0 16px;">We saved you a seat.</p>' in transport.delivered[0].html
    assert send_due_nudges(svc).sent == 0
    again = winback.approve(svc, "org-1", [jo["id"]], "user:u1 Ann")
    assert again["approved"] == [] and "no longer a draft (sent)" in again["refused"][0]["reason"]

    al = next(d for d in winback.overview(svc, "org-1")["drafts"] if d["person_id"] == "p-al")
    winback.discard(svc, "org-1", al["id"], "user:u1 Ann")
    with pytest.raises(winback.Refused):
        winback.discard(svc, "org-1", al["id"], "user:u1 Ann")
    with pytest.raises(NotFound):
        winback.edit(svc, "org-2", al["id"], "x", "y", "user:u9 Eve")
    # Jo comes back the next day (the funnel's last step), then drifts again: a new drift,
    # but within the 90-day cool-down of the last win-back, so nothing until it has passed.
    back = Gathering("org-1", kind="volunteer_shift", title="Food bank shift", starts_at=NOW + timedelta(days=1))
    svc.transaction(lambda tx: apply_checkin_messages(tx, [back.scheduled(), back.checked_in("p-jo")]))
    assert winback.overview(svc, "org-1")["funnel"] == {
        "drafted": 2,
        "approved": 1,
        "sent": 1,
        "came_back": 1,
        "waiting": 0,
        "discarded": 1,
    }
    assert scan_win_back(svc, NOW + timedelta(days=60), force=True) == 0
    assert scan_win_back(svc, NOW + timedelta(days=91), force=True) == 1


def test_automatic_and_off(wired: tuple[Services, FakeStore, FakeTransactions, FakeTransport]) -> None:
    svc, _, transactions, transport = wired
    svc.transaction(lambda tx: apply_checkin_messages(tx, regular("p-jo", "Jo")))
    svc.store.settings.update("org:org-1", {"win_back.mode": "off", "org_id": "org-1"})
    assert scan_win_back(svc, NOW, force=True) == 0
    svc.store.settings.update("org:org-1", {"win_back.mode": "automatic", "org_id": "org-1"})
    assert scan_win_back(svc, NOW, force=True) == 1
    assert transactions.types().count("followup.scheduled") == 1
    assert send_due_nudges(svc).sent == 1
    assert transport.delivered[0].subject == "We've missed you, Jo"
    assert winback.overview(svc, "org-1")["funnel"]["approved"] == 1
