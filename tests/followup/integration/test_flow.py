"""From checkin's facts to the right emails in a real SMTP server, once."""

from __future__ import annotations

import re
import threading
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest

from followup.adapters.mongo import NUDGES, PLANS, SEND_BATCHES
from followup.domain.nudges import NudgeState
from followup.service_layer import tracking
from followup.service_layer.context import Services
from followup.service_layer.scheduling import run_scheduler_once, scan_win_back
from followup.service_layer.sending import Sender, send_due_nudges
from tests.followup.helpers import Gathering, SmtpServer
from tests.followup.integration.conftest import apply
from turnout_common.outbox import OUTBOX

pytestmark = pytest.mark.integration


def outbox_types(svc: Services) -> Counter[str]:
    return Counter(doc["type"] for doc in svc.db[OUTBOX].find({}, {"type": 1}))


def who_got_what(smtp: SmtpServer) -> dict[str, set[str]]:
    got: dict[str, set[str]] = defaultdict(set)
    for item in smtp.handler.received:
        got[item.to.split("@")[0]].add(item.kind)
    return dict(got)


def link(text: str, prefix: str) -> str:
    found = re.search(rf"(https://followup\.example\.org/{prefix}/[^\s\"<>]+)", text)
    assert found, f"no /{prefix}/ link in the message"
    return found.group(1)


def test_an_ended_gathering_gets_exactly_the_expected_nudges(svc: Services, smtp: SmtpServer, org_id: str) -> None:
    g = Gathering(org_id)
    apply(
        svc,
        [
            g.scheduled(),
            g.registered("p-alice", "Alice", "alice@example.org", offers=["Grant-Writing"], seeks=["design"]),
            g.registered("p-bob", "Bob", "bob@example.org", offers=["Designs"], seeks=["grant writing"]),
            g.registered("p-carol", "Carol", "carol@example.org"),
            g.registered("p-dan", "Dan", "dan@example.org", consent=False, offers=["design"]),
            g.registered("p-erin", "Erin", "erin@example.org"),
            g.checked_in("p-alice", first_time=True),
            g.checked_in("p-bob", first_time=True),
            g.checked_in("p-dan", first_time=True),
            g.checked_in("p-erin"),
            g.ended(),
        ],
    )
    run_scheduler_once(svc, "test")
    plan = svc.db[PLANS].find_one({"_id": g.event_id})
    assert plan is not None and plan["state"] == "planned"
    report = send_due_nudges(svc)
    assert report.sent == 8
    assert who_got_what(smtp) == {
        "alice": {"thank_you", "first_timer_welcome", "introduction_request"},
        "bob": {"thank_you", "first_timer_welcome", "introduction_request"},
        "carol": {"we_missed_you"},
        "erin": {"thank_you"},
    }
    for item in smtp.handler.received:
        message = item.message
        assert message.get_content_type() == "multipart/alternative"
        parts = [part.get_content_type() for part in message.iter_parts()]
        assert parts == ["text/plain", "text/html"]
        assert message["List-Unsubscribe"].startswith("<https://followup.example.org/u/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        nudge = svc.db[NUDGES].find_one({"_id": item.followup_id})
        assert nudge is not None and nudge["state"] == "sent"
        assert message["Message-ID"] == nudge["message_id"]
    # Every nudge was announced once: scheduled and sent.
    types = outbox_types(svc)
    assert types["followup.scheduled"] == 8
    assert types["followup.sent"] == 8

    # Double opt-in: Alice says yes, nothing yet; Bob says yes, both are introduced.
    request = next(i for i in smtp.handler.received if i.to == "alice@example.org" and i.kind == "introduction_request")
    html = request.message.get_body(preferencelist=("html",)).get_content()
    assert "Bob T." in html and "Tester" not in html.split("Bob T.")[1][:20]
    alice_token = link(html, "i").rsplit("/", 1)[1]
    parsed = svc.links.check_introduction(alice_token)
    first = tracking.accept_introduction(svc, parsed.introduction_id, parsed.person_id)
    assert first.newly and not first.both
    again = tracking.accept_introduction(svc, parsed.introduction_id, parsed.person_id)
    assert not again.newly
    assert send_due_nudges(svc).sent == 0
    bob_request = next(
        i for i in smtp.handler.received if i.to == "bob@example.org" and i.kind == "introduction_request"
    )
    bob_token = link(bob_request.message.get_body(preferencelist=("plain",)).get_content(), "i").rsplit("/", 1)[1]
    parsed_bob = svc.links.check_introduction(bob_token)
    assert tracking.accept_introduction(svc, parsed_bob.introduction_id, parsed_bob.person_id).both
    assert send_due_nudges(svc).sent == 2
    introductions = {i.to: i for i in smtp.handler.received if i.kind == "introduction"}
    assert set(introductions) == {"alice@example.org", "bob@example.org"}
    assert "bob@example.org" in introductions["alice@example.org"].message.get_body(("plain",)).get_content()
    assert "alice@example.org" in introductions["bob@example.org"].message.get_body(("plain",)).get_content()
    assert outbox_types(svc)["introduction.accepted"] == 2
    assert smtp.handler.count_by_followup().most_common(1)[0][1] == 1


def test_late_checkin_turns_we_missed_you_into_thank_you(svc: Services, smtp: SmtpServer, org_id: str) -> None:
    g = Gathering(org_id, kind="workshop")
    apply(svc, [g.scheduled(), g.registered("p-late", "Lee", "lee@example.org"), g.ended()])
    svc.settings = type(svc.settings)(**{**_fields(svc), "send_delay_seconds": 3600})
    run_scheduler_once(svc, "test")
    scheduled = {doc["kind"]: doc["state"] for doc in svc.db[NUDGES].find({"event_id": g.event_id})}
    assert scheduled == {"we_missed_you": "scheduled"}
    # The kiosk's offline queue arrives after the end, before the send.
    apply(svc, [g.checked_in("p-late")])
    run_scheduler_once(svc, "test")
    states = {doc["kind"]: doc for doc in svc.db[NUDGES].find({"event_id": g.event_id})}
    assert states["we_missed_you"]["state"] == "skipped"
    assert states["thank_you"]["state"] == "scheduled"
    # Sends happen at the planned time: travel there.
    later = datetime.now(UTC) + timedelta(hours=2)
    svc.clock = lambda: later
    send_due_nudges(svc)
    assert who_got_what(smtp) == {"lee": {"thank_you"}}


def _fields(svc: Services) -> dict[str, object]:
    return {name: getattr(svc.settings, name) for name in svc.settings.__dataclass_fields__}


def test_nothing_without_consent_and_unsubscribe_stops_the_next_nudge(
    svc: Services, smtp: SmtpServer, org_id: str
) -> None:
    first = Gathering(org_id, kind="workshop")
    apply(
        svc,
        [
            first.scheduled(),
            first.registered("p-fay", "Fay", "fay@example.org"),
            first.registered("p-gus", "Gus", "gus@example.org", consent=False),
            first.checked_in("p-fay", first_time=True),
            first.checked_in("p-gus", first_time=True),
            first.ended(),
        ],
    )
    run_scheduler_once(svc, "test")
    send_due_nudges(svc)
    assert who_got_what(smtp) == {"fay": {"thank_you", "first_timer_welcome"}}
    thank_you = next(i for i in smtp.handler.received if i.kind == "thank_you")
    token = thank_you.message["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
    result = tracking.unsubscribe(svc, svc.links.check_unsubscribe(token), "one_click")
    assert result.newly
    assert not tracking.unsubscribe(svc, svc.links.check_unsubscribe(token), "one_click").newly
    assert outbox_types(svc)["contact.unsubscribed"] == 1

    second = Gathering(org_id, kind="workshop", title="Second workshop")
    apply(
        svc,
        [
            second.scheduled(),
            second.registered("p-fay", "Fay", "fay@example.org"),
            second.checked_in("p-fay"),
            second.ended(),
        ],
    )
    run_scheduler_once(svc, "test")
    send_due_nudges(svc)
    assert len(smtp.handler.received) == 2  # nothing new for Fay


def test_tracking_links_record_once(svc: Services, smtp: SmtpServer, org_id: str) -> None:
    g = Gathering(org_id, kind="meeting")
    apply(svc, [g.scheduled(), g.registered("p-hal", "Hal", "hal@example.org"), g.checked_in("p-hal"), g.ended()])
    svc.db["followup_settings"].insert_one(
        {"_id": f"event:{g.event_id}", "content": {"photos_url": "https://photos.example.org/album/1"}}
    )
    run_scheduler_once(svc, "test")
    send_due_nudges(svc)
    (item,) = smtp.handler.received
    html = item.message.get_body(("html",)).get_content()
    pixel = link(html, "o")
    assert pixel.endswith(".gif")
    followup = svc.links.check_open(pixel.rsplit("/", 1)[1].removesuffix(".gif"))
    assert tracking.record_open(svc, followup)
    assert not tracking.record_open(svc, followup)
    click = link(html, "c").replace("&amp;", "&")
    token, _, query = click.rsplit("/", 1)[1].partition("?u=")
    target = unquote(query)
    assert target == "https://photos.example.org/album/1"
    assert tracking.record_click(svc, svc.links.check_click(token, target), target)
    assert not tracking.record_click(svc, svc.links.check_click(token, target), target)
    feedback = link(html, "f").replace("&amp;", "&")
    fb_token = feedback.rsplit("/", 1)[1].split("?")[0]
    assert tracking.record_feedback(svc, svc.links.check_feedback(fb_token), 5)
    assert not tracking.record_feedback(svc, svc.links.check_feedback(fb_token), 5)
    types = outbox_types(svc)
    assert (types["followup.opened"], types["followup.clicked"], types["feedback.submitted"]) == (1, 1, 1)


def test_volunteer_hours_with_running_total(svc: Services, smtp: SmtpServer, org_id: str) -> None:
    earlier = Gathering(org_id, kind="volunteer_shift", title="Morning shift")
    shift = Gathering(org_id, kind="volunteer_shift", title="Evening shift")
    apply(
        svc,
        [
            earlier.scheduled(),
            earlier.registered("p-ivy", "Ivy", "ivy@example.org"),
            earlier.checked_in("p-ivy"),
            earlier.checked_out("p-ivy", 3.0),
            shift.scheduled(),
            shift.registered("p-ivy", "Ivy", "ivy@example.org"),
            shift.checked_in("p-ivy"),
            shift.ended(),
            shift.checked_out("p-ivy", 2.5),
        ],
    )
    run_scheduler_once(svc, "test")
    send_due_nudges(svc)
    hours = next(i for i in smtp.handler.received if i.kind == "volunteer_hours")
    text = hours.message.get_body(("plain",)).get_content()
    assert "2.5 hours at Evening shift" in text
    assert "5.5 hours" in text


def test_win_back_for_a_drifted_regular(svc: Services, smtp: SmtpServer, org_id: str) -> None:
    old = datetime.now(UTC) - timedelta(days=120)
    messages = []
    for index in range(3):
        g = Gathering(org_id, kind="meeting", title=f"Meeting {index}", starts_at=old + timedelta(days=7 * index))
        messages += [g.scheduled(status="ended"), g.registered("p-jo", "Jo", "jo@example.org"), g.checked_in("p-jo")]
    recent = Gathering(org_id, kind="meeting", starts_at=datetime.now(UTC) - timedelta(days=120))
    messages += [recent.registered("p-kim", "Kim", "kim@example.org"), recent.checked_in("p-kim")]
    apply(svc, messages)
    # An organization that chose automatic win-backs (the default, approval, is in test_winback.py).
    svc.store.settings.update(f"org:{org_id}", {"win_back.mode": "automatic", "org_id": org_id})
    assert scan_win_back(svc, datetime.now(UTC), force=True) == 1  # Kim came only once
    assert scan_win_back(svc, datetime.now(UTC), force=True) == 0  # one per drift
    send_due_nudges(svc)
    assert who_got_what(smtp) == {"jo": {"win_back"}}
    nudge = svc.db[NUDGES].find_one({"kind": "win_back", "person_id": "p-jo"})
    assert nudge is not None and nudge["event_id"] is None


def test_two_senders_share_the_work_without_doubles(svc: Services, smtp: SmtpServer, org_id: str) -> None:
    g = Gathering(org_id, kind="meeting")
    people = [f"p-{n:03d}" for n in range(120)]
    messages = [g.scheduled()]
    for person in people:
        messages += [g.registered(person, "Guest", f"{person}@example.org"), g.checked_in(person)]
    apply(svc, [*messages, g.ended()])
    svc.settings = type(svc.settings)(**{**_fields(svc), "batch_size": 10})
    run_scheduler_once(svc, "test")
    assert svc.db[SEND_BATCHES].count_documents({"event_id": g.event_id}) == 12
    stop = threading.Event()
    senders = [Sender(svc, f"s{n}") for n in range(3)]
    threads = [threading.Thread(target=s.run, args=(stop,)) for s in senders]
    for thread in threads:
        thread.start()
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    while len(smtp.handler.received) < 120 and datetime.now(UTC) < deadline:
        threading.Event().wait(0.1)
    stop.set()
    for thread in threads:
        thread.join(10)
    counts = smtp.handler.count_by_followup()
    assert len(counts) == 120 and max(counts.values()) == 1
    assert sum(1 for s in senders if s.totals.sent) >= 2
    assert svc.db[NUDGES].count_documents({"event_id": g.event_id, "state": NudgeState.SENT.value}) == 120


def test_a_plan_is_claimed_when_unleased_or_its_lease_expired_never_while_leased(svc: Services) -> None:
    from followup.service_layer.scheduling import _claim_plan

    now = datetime(2026, 5, 2, 12, 0, tzinfo=UTC)
    svc.db[PLANS].insert_many(
        [
            {"_id": "unleased", "lease_owner": None, "lease_until": None},
            {"_id": "no-lease-field"},
            {"_id": "expired", "lease_owner": "dead", "lease_until": now - timedelta(seconds=1)},
            {"_id": "leased", "lease_owner": "alive", "lease_until": now + timedelta(seconds=30)},
        ]
    )
    claimed = {plan: _claim_plan(svc, plan, "me", now) for plan in ("unleased", "no-lease-field", "expired", "leased")}
    assert claimed == {"unleased": True, "no-lease-field": True, "expired": True, "leased": False}
    owners = {doc["_id"]: doc["lease_owner"] for doc in svc.db[PLANS].find({}, {"lease_owner": 1})}
    assert owners == {"unleased": "me", "no-lease-field": "me", "expired": "me", "leased": "alive"}
    assert svc.db[PLANS].find_one({"_id": "expired"})["lease_until"] == now + svc.lease
    assert _claim_plan(svc, "unleased", "other", now) is False  # now leased by "me"
