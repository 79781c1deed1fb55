"""follow-up's main use cases on the in-memory fakes (no database, no broker):
planning an ended gathering's nudges, sending a batch through a transport that
refuses once for now, unsubscribing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from followup.config import Settings
from followup.domain.engagement import Fetch
from followup.domain.mail import OutgoingMail, Rejected
from followup.service_layer import tracking
from followup.service_layer.context import Services
from followup.service_layer.handlers import apply_checkin_messages
from followup.service_layer.probe import SendPoint
from followup.service_layer.scheduling import run_scheduler_once
from followup.service_layer.sending import Sender, send_due_nudges
from tests.followup.helpers import Gathering
from tests.followup.unit.fakes import FakeStore, FakeTransactions, FakeTransport, fake_services
from turnout_common.envelope import Envelope


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in {
        "FOLLOWUP_SEND_DELAY_SECONDS": "0",
        "FOLLOWUP_WINDOW_START": "00:00",
        "FOLLOWUP_WINDOW_END": "24:00",
        "FOLLOWUP_RETRY_BASE_SECONDS": "60",
        "FOLLOWUP_MAX_ATTEMPTS": "3",
        "TURNOUT_PUBLIC_URL_FOLLOWUP": "https://followup.example.org",
    }.items():
        monkeypatch.setenv(key, value)
    return Settings.from_env()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport()


@pytest.fixture
def wired(
    settings: Settings, clock: Clock, transport: FakeTransport
) -> Iterator[tuple[Services, FakeStore, FakeTransactions]]:
    yield fake_services(settings, clock=clock, transport=transport)


def consume(svc: Services, messages: list[Envelope]) -> None:
    svc.transaction(lambda tx: apply_checkin_messages(tx, messages))


def ended_meeting(svc: Services) -> Gathering:
    """Ann and Bo came (Bo for the first time ever), Cy registered and did not come."""
    g = Gathering("org-1", kind="meeting", title="Neighbours meeting")
    consume(
        svc,
        [
            g.scheduled(),
            g.registered("p-ann", "Ann", "Ann@Example.org"),
            g.registered("p-bo", "Bo", "bo@example.org"),
            g.registered("p-cy", "Cy", "cy@example.org"),
            g.registered("p-dee", "Dee", "dee@example.org", consent=False),
            g.checked_in("p-ann"),
            g.checked_in("p-bo", first_time=True),
            g.checked_in("p-dee"),
            g.ended(ended_at=svc.now()),
        ],
    )
    return g


def test_an_ended_gathering_gets_its_nudges_planned_once(wired: tuple[Services, FakeStore, FakeTransactions]) -> None:
    svc, store, transactions = wired
    g = ended_meeting(svc)
    assert store.tables["plans"].docs[g.event_id]["state"] == "pending"

    created = run_scheduler_once(svc, "unit")

    nudges = {(d["person_id"], d["kind"]) for d in store.tables["nudges"].all()}
    assert nudges == {
        ("p-ann", "thank_you"),
        ("p-bo", "thank_you"),
        ("p-bo", "first_timer_welcome"),
        ("p-cy", "we_missed_you"),
    }  # Dee never consented: nothing for her
    assert created == 4
    assert store.tables["plans"].docs[g.event_id]["state"] == "planned"
    assert len(store.tables["batches"].all()) == 1
    assert transactions.types().count("followup.scheduled") == 4
    assert {d["email_norm"] for d in store.tables["contacts"].all()} >= {"ann@example.org"}
    # A second pass (or a second scheduler) plans nothing twice.
    assert run_scheduler_once(svc, "unit") == 0
    assert len(store.tables["nudges"].all()) == 4


def test_a_batch_is_sent_and_a_refusal_for_now_is_retried(
    wired: tuple[Services, FakeStore, FakeTransactions], transport: FakeTransport, clock: Clock
) -> None:
    svc, store, transactions = wired
    ended_meeting(svc)
    run_scheduler_once(svc, "unit")
    refused: list[str] = []

    def busy_once_for_cy(mail: OutgoingMail) -> Rejected | None:
        if mail.to_address == "cy@example.org" and not refused:
            refused.append(mail.to_address)
            return Rejected("451 4.7.1 Try again later", permanent=False, code=451)
        return None

    transport.script = busy_once_for_cy

    first = send_due_nudges(svc)

    assert (first.sent, first.retry) == (3, 1)
    states = {d["person_id"] + ":" + d["kind"]: d["state"] for d in store.tables["nudges"].all()}
    assert states["p-cy:we_missed_you"] == "retry"
    assert sorted(m.to_address for m in transport.delivered) == [
        "Ann@Example.org",
        "bo@example.org",
        "bo@example.org",
    ]
    failed = [m.data for m in transactions.published if m.type == "followup.failed"]
    assert [(f["permanent"], f["attempts"]) for f in failed] == [(False, 1)]
    # Every handed-over attempt is journaled, and stored exactly as it left.
    assert len(store.tables["journal"].all()) == 3 * 2 + 1
    assert len(store.tables["rendered"].all()) == 4

    clock.advance(60 * 1.3)  # past the first retry's delay (with its jitter)
    second = send_due_nudges(svc)

    assert second.sent == 1
    assert {d["state"] for d in store.tables["nudges"].all()} == {"sent"}
    cy = next(d for d in store.tables["nudges"].all() if d["person_id"] == "p-cy")
    assert cy["attempts"] == 2
    assert transactions.types().count("followup.sent") == 4
    assert store.figures.totals() == {"sent": 4, "retry": 1}


def test_an_unreachable_transport_postpones_the_batch(
    wired: tuple[Services, FakeStore, FakeTransactions], transport: FakeTransport
) -> None:
    svc, store, _ = wired
    ended_meeting(svc)
    run_scheduler_once(svc, "unit")
    transport.down = True

    report = send_due_nudges(svc)

    assert report.handled == 0
    (batch,) = store.tables["batches"].all()
    assert batch["state"] == "ready" and batch["due_at"] > svc.now()
    assert {d["state"] for d in store.tables["nudges"].all()} == {"scheduled"}


def test_unsubscribing_stops_later_emails_and_is_idempotent(
    wired: tuple[Services, FakeStore, FakeTransactions], transport: FakeTransport
) -> None:
    svc, store, transactions = wired
    ended_meeting(svc)
    run_scheduler_once(svc, "unit")
    ann = next(d for d in store.tables["nudges"].all() if d["person_id"] == "p-ann")

    first = tracking.unsubscribe(svc, ann["_id"], "one_click")
    again = tracking.unsubscribe(svc, ann["_id"], "link")

    assert (first.newly, again.newly) == (True, False)
    assert store.tables["contacts"].docs["p-ann"]["unsubscribed"] is True
    entry = store.suppressions.get("org-1:ann@example.org")
    assert entry is not None and entry["reason"] == "unsubscribed" and entry["email_norm"] == "ann@example.org"
    assert transactions.types().count("contact.unsubscribed") == 1
    # The send-time decision sees it: Ann's thank-you is skipped, the others go out.
    report = send_due_nudges(svc)
    assert (report.sent, report.skipped) == (3, 1)
    assert "Ann@Example.org" not in [m.to_address for m in transport.delivered]


def test_an_unknown_followup_cannot_be_unsubscribed(wired: tuple[Services, FakeStore, FakeTransactions]) -> None:
    svc, _, transactions = wired
    with pytest.raises(tracking.NotFound):
        tracking.unsubscribe(svc, "no-such-followup", "link")
    assert transactions.published == []


class RecordingProbe:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def reached(self, point: SendPoint, handed_over: int) -> None:
        self.seen.append((point, handed_over))


def test_the_sender_tells_its_probe_each_step(wired: tuple[Services, FakeStore, FakeTransactions]) -> None:
    """The points the fault tests stop a sender at, with the messages handed over so far."""
    svc, _, _ = wired
    ended_meeting(svc)
    run_scheduler_once(svc, "unit")
    probe = RecordingProbe()
    sender = Sender(svc, "probed", probe)

    sender.send_once(threading.Event())

    assert probe.seen[0] == ("after_claim", 0)
    steps = probe.seen[1:]
    assert steps == [step for n in range(4) for step in (("before_send", n), ("after_send_before_record", n))]
    assert sender.handed_over == 4


def test_a_link_scanner_is_recorded_apart_and_a_person_later_counts(
    wired: tuple[Services, FakeStore, FakeTransactions], clock: Clock
) -> None:
    svc, store, transactions = wired
    ended_meeting(svc)
    run_scheduler_once(svc, "unit")
    assert send_due_nudges(svc).sent == 4
    ann = next(d for d in store.tables["nudges"].all() if d["person_id"] == "p-ann")
    photos, donate = "https://example.org/photos", "https://example.org/donate"
    browser = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"

    # The gateway, a second after delivery: HEAD and GET of both links, then the pixel.
    clock.advance(1)
    for url in (photos, donate):
        assert tracking.record_click(svc, ann["_id"], url, Fetch("HEAD", browser, svc.now()))
        assert not tracking.record_click(svc, ann["_id"], url, Fetch("GET", browser, svc.now()))
    assert tracking.record_open(svc, ann["_id"], Fetch("GET", "Mozilla/5.0", svc.now()))
    doc = store.tables["nudges"].docs[ann["_id"]]
    assert doc.get("clicked_at") is None and doc.get("opened_at") is None
    assert (doc["machine_click_count"], doc["machine_clicked_urls"]) == (4, [photos, donate])
    clicked = [m.data for m in transactions.published if m.type == "followup.clicked"]
    assert [(c["machine"], c["machine_reason"]) for c in clicked] == [(True, "head"), (True, "head")]
    opened = [m.data for m in transactions.published if m.type == "followup.opened"]
    assert [(o["machine"], o["machine_reason"]) for o in opened] == [(True, "image_proxy")]

    # A browser a second after another link is still the scanner; Ann herself, an hour later, counts.
    clock.advance(1)
    assert not tracking.record_click(svc, ann["_id"], photos, Fetch("GET", browser, svc.now()))
    doc = store.tables["nudges"].docs[ann["_id"]]
    assert doc.get("clicked_at") is None and doc["machine_click_count"] == 5
    clock.advance(3600)
    assert tracking.record_click(svc, ann["_id"], photos, Fetch("GET", browser, svc.now()))
    doc = store.tables["nudges"].docs[ann["_id"]]
    assert doc["clicked_at"] == svc.now() and doc["clicked_urls"] == [photos] and doc["click_count"] == 1
    person = [m.data for m in transactions.published if m.type == "followup.clicked"][-1]
    assert "machine" not in person and person["url"] == photos


def test_a_check_out_keeps_the_volunteers_hours_page_for_the_hours_email(
    wired: tuple[Services, FakeStore, FakeTransactions],
) -> None:
    svc, store, _ = wired
    g = Gathering("org-1", kind="volunteer_shift", title="Pantry sort")
    link = "https://checkin.example.org/hours/me/eyJvIjoib3JnLTEifQ.c2ln"
    consume(
        svc,
        [
            g.scheduled(),
            g.registered("p-ann", "Ann", "ann@example.org"),
            g.registered("p-bo", "Bo", "bo@example.org"),
            g.checked_in("p-ann"),
            g.checked_in("p-bo"),
            g.checked_out("p-ann", 3.0, hours_link=link),
            g.checked_out("p-bo", 2.0),  # an older checkin sends none
        ],
    )
    rows = {row["person_id"]: row for row in store.attendance.of_event(g.event_id)}
    assert rows["p-ann"]["hours_link"] == link and rows["p-ann"]["hours"] == 3.0
    assert "hours_link" not in rows["p-bo"] and rows["p-bo"]["hours"] == 2.0
