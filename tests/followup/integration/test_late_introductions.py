"""Introductions for late arrivals, on the session's real SecantusDB (and, for the worker,
the real Tansu broker): people who check in after a gathering's introduction requests went
out are matched in a late round with those who came early, once, and only while the
gathering's follow-up window is open."""

from __future__ import annotations

import re
import threading
import uuid
from collections import Counter
from datetime import datetime, timedelta

import pytest
from kafka import KafkaProducer

from followup.adapters.mongo import CONTACTS, INTRODUCTIONS, NUDGES, PLANS
from followup.bootstrap import MongoServices
from followup.service_layer import tracking
from followup.service_layer.scheduling import match_late_introductions, run_scheduler_once
from followup.service_layer.sending import send_due_nudges
from tests.conftest import Infrastructure
from tests.followup.helpers import Gathering, Received, SmtpServer, erasure_requested
from tests.followup.integration.conftest import apply
from tests.followup.integration.test_faults import wait_until, worker
from turnout_common.consumer import PROCESSED
from turnout_common.contracts import CHECKIN_TOPIC, registry
from turnout_common.envelope import Envelope
from turnout_common.kafka import ensure_topics

pytestmark = pytest.mark.integration

# ann and ben suggest each other; cat finds nobody among the early ones. (Tags as checkin
# publishes them: lower case, trimmed; follow-up still folds plurals and separators.)
EARLY = {
    "ann": (["grant writing"], ["web design"]),
    "ben": (["web-design"], ["grant writing"]),
    "cat": (["fundraising"], ["bookkeeping"]),
}
# lee matches cat (both ways) and ann (lee seeks what ann offers); never ben.
LEE = (["bookkeeping"], ["fundraisings", "grant writings"])


def arrive(g: Gathering, person: str, domain: str, tags: tuple[list[str], list[str]]) -> list[Envelope]:
    offers, seeks = tags
    return [
        g.registered(f"p-{person}", person.title(), f"{person}@{domain}", offers=offers, seeks=seeks),
        g.checked_in(f"p-{person}"),
    ]


def requests(smtp: SmtpServer, domain: str) -> list[Received]:
    return [item for item in smtp.handler.for_domain(domain) if item.kind == "introduction_request"]


def requests_per_person(smtp: SmtpServer, domain: str) -> Counter[str]:
    return Counter(item.to.split("@")[0] for item in requests(smtp, domain))


def plain_text(item: Received) -> str:
    body = item.message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def suggested_names(item: Received) -> list[str]:
    text = plain_text(item)
    return [name.strip() for name in re.findall(r"^\* (.+)$", text, flags=re.MULTILINE)]


def accept_token(item: Received, name: str) -> str:
    """The token of the "yes, introduce us" link under ``name`` in a request."""
    text = plain_text(item)
    entry = text.split(f"* {name}", 1)[1]
    found = re.search(r"https://\S+/i/([^\s]+)", entry)
    assert found, f"no link for {name}"
    return found.group(1)


def pairs(svc: MongoServices, event_id: str) -> Counter[str]:
    return Counter(doc["pair_key"] for doc in svc.db[INTRODUCTIONS].find({"event_id": event_id}))


def test_a_late_arrival_is_matched_with_early_ones_once_and_only_within_the_window(
    svc: MongoServices, smtp: SmtpServer, org_id: str
) -> None:
    domain = f"{uuid.uuid4().hex[:8]}.example.org"
    g = Gathering(org_id)
    early = [m for person, tags in EARLY.items() for m in arrive(g, person, domain, tags)]
    apply(svc, [g.scheduled(), *early, g.ended()])
    plan = svc.db[PLANS].find_one({"_id": g.event_id})
    assert plan is not None
    ended_at: datetime = plan["ended_at"]
    run_scheduler_once(svc, "test")
    assert send_due_nudges(svc).sent == 5  # three thank-yous, two requests
    assert requests_per_person(smtp, domain) == {"ann": 1, "ben": 1}
    assert pairs(svc, g.event_id) == {"p-ann|p-ben": 1}

    # Lee's check-in reaches follow-up after the requests went out (a kiosk's offline queue).
    late = arrive(g, "lee", domain, LEE)
    apply(svc, late)
    run_scheduler_once(svc, "test")
    assert set(pairs(svc, g.event_id)) == {"p-ann|p-ben", "p-cat|p-lee", "p-ann|p-lee"}
    assert send_due_nudges(svc).sent == 4  # lee's thank-you; requests to lee, cat and ann
    assert requests_per_person(smtp, domain) == {"ann": 2, "ben": 1, "cat": 1, "lee": 1}
    by_person = {item.to.split("@")[0]: item for item in requests(smtp, domain)}
    assert sorted(suggested_names(by_person["lee"])) == ["Ann T.", "Cat T."]
    assert suggested_names(by_person["cat"]) == ["Lee T."]
    second_to_ann = [item for item in requests(smtp, domain) if item.to.startswith("ann@")][1]
    assert suggested_names(second_to_ann) == ["Lee T."]  # not ben again

    # The check-in replayed (the same message, and a kiosk's resend of it): nothing new.
    apply(svc, late)
    apply(svc, [g.checked_in("p-lee")])
    assert run_scheduler_once(svc, "test") == 0
    assert send_due_nudges(svc).sent == 0
    assert max(pairs(svc, g.event_id).values()) == 1

    # The late pair's double opt-in works like any other.
    for token in (accept_token(by_person["lee"], "Cat T."), accept_token(by_person["cat"], "Lee T.")):
        parsed = svc.links.check_introduction(token)
        tracking.accept_introduction(svc, parsed.introduction_id, parsed.person_id)
    assert send_due_nudges(svc).sent == 2
    introduced = {item.to.split("@")[0] for item in smtp.handler.for_domain(domain) if item.kind == "introduction"}
    assert introduced == {"cat", "lee"}

    # The window: until FOLLOWUP_MAX_EVENT_AGE_HOURS (72) after the end, inclusive.
    window = timedelta(hours=svc.settings.max_event_age_hours)
    edge = ended_at + window
    apply(svc, arrive(g, "nia", domain, (["web design"], [])))  # for ann (who seeks it)
    run_scheduler_once(svc, "test", now=edge)
    assert "p-ann|p-nia" in pairs(svc, g.event_id)
    apply(svc, arrive(g, "mo", domain, (["bookkeeping"], [])))  # for cat, but too late
    run_scheduler_once(svc, "test", now=edge + timedelta(seconds=1))
    assert not [key for key in pairs(svc, g.event_id) if "p-mo" in key]
    mo_nudges = {doc["kind"] for doc in svc.db[NUDGES].find({"event_id": g.event_id, "person_id": "p-mo"})}
    assert "introduction_request" not in mo_nudges and "thank_you" in mo_nudges
    later: datetime = edge + timedelta(seconds=2)
    svc.clock = lambda: later
    send_due_nudges(svc)
    assert requests_per_person(smtp, domain) == {"ann": 3, "ben": 1, "cat": 1, "lee": 1, "nia": 1}
    assert smtp.handler.count_by_followup().most_common(1)[0][1] == 1


@pytest.mark.parametrize("gone", ["unsubscribed", "erased"])
def test_a_person_unsubscribed_or_erased_is_never_suggested_to_a_late_arrival(
    svc: MongoServices, smtp: SmtpServer, org_id: str, gone: str
) -> None:
    domain = f"{uuid.uuid4().hex[:8]}.example.org"
    g = Gathering(org_id)
    early = [m for person, tags in EARLY.items() for m in arrive(g, person, domain, tags)]
    apply(svc, [g.scheduled(), *early, g.ended()])
    run_scheduler_once(svc, "test")
    if gone == "unsubscribed":
        svc.db[CONTACTS].update_one({"_id": "p-cat"}, {"$set": {"unsubscribed": True}})
    else:
        apply(svc, [erasure_requested(org_id, "p-cat", f"cat@{domain}")])
    apply(svc, arrive(g, "lee", domain, LEE))
    run_scheduler_once(svc, "test")
    assert set(pairs(svc, g.event_id)) == {"p-ann|p-ben", "p-ann|p-lee"}
    send_due_nudges(svc)
    assert requests_per_person(smtp, domain) == {"ann": 2, "ben": 1, "lee": 1}


def test_concurrent_late_rounds_make_one_round(svc: MongoServices, smtp: SmtpServer, org_id: str) -> None:
    """Two schedulers working on the same late arrival at once (a lease taken over):
    one set of suggestions, one request per person."""
    domain = f"{uuid.uuid4().hex[:8]}.example.org"
    g = Gathering(org_id)
    early = [m for person, tags in EARLY.items() for m in arrive(g, person, domain, tags)]
    apply(svc, [g.scheduled(), *early, g.ended()])
    run_scheduler_once(svc, "test")
    apply(svc, arrive(g, "lee", domain, LEE))
    barrier = threading.Barrier(3)
    created: list[int] = []
    errors: list[Exception] = []

    def round_() -> None:
        barrier.wait()
        try:
            created.append(match_late_introductions(svc, g.event_id, ["p-lee"], svc.now()))
        except Exception as exc:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=round_) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert sum(created) == 3  # lee, cat, ann: once
    assert pairs(svc, g.event_id) == {"p-ann|p-ben": 1, "p-cat|p-lee": 1, "p-ann|p-lee": 1}
    late_requests = Counter(
        doc["person_id"]
        for doc in svc.db[NUDGES].find({"event_id": g.event_id, "kind": "introduction_request"})
        if doc.get("introduction_round")
    )
    assert late_requests == {"p-lee": 1, "p-cat": 1, "p-ann": 1}


def test_the_worker_matches_a_check_in_arriving_late_through_the_broker(
    svc: MongoServices, smtp: SmtpServer, org_id: str, followup_env: dict[str, str], infra: Infrastructure
) -> None:
    """The worker process consumes checkin's messages from the broker: the early ones get
    their requests; a check-in arriving after them is matched with someone early; the
    same check-in delivered again asks nobody a second time."""
    ensure_topics(infra.bootstrap, 6)
    domain = f"{uuid.uuid4().hex[:8]}.example.org"
    g = Gathering(org_id)
    env = {**followup_env, "FOLLOWUP_CONSUMER_GROUP": f"followup-late-{uuid.uuid4().hex[:8]}"}
    producer = KafkaProducer(bootstrap_servers=infra.bootstrap, acks="all")

    def publish(*messages: Envelope) -> None:
        for message in messages:
            key = str(message.data[registry().route(message.type).key_field])
            producer.send(CHECKIN_TOPIC, key=key.encode(), value=message.to_json())
        producer.flush()

    try:
        with worker(env, FOLLOWUP_SENDER_THREADS="1"):
            early = [m for person, tags in EARLY.items() for m in arrive(g, person, domain, tags)]
            publish(g.scheduled(), *early, g.ended())
            wait_until(lambda: requests_per_person(smtp, domain) == {"ann": 1, "ben": 1}, 60, "the early requests")
            late = arrive(g, "lee", domain, LEE)
            publish(*late)
            wait_until(
                lambda: requests_per_person(smtp, domain) == {"ann": 2, "ben": 1, "cat": 1, "lee": 1},
                60,
                "the late round's requests",
            )
            replay = g.checked_in("p-lee")  # a kiosk's resend, and the same message again
            publish(*late, replay)

            def settled() -> bool:
                plan = svc.db[PLANS].find_one({"_id": g.event_id}) or {}
                return svc.db[PROCESSED].find_one({"_id": replay.id}) is not None and not plan.get("has_dirty")

            wait_until(settled, 60, "the replay consumed and looked at")
            wait_until(
                lambda: all(
                    doc["state"] != "scheduled" for doc in svc.db[NUDGES].find({"event_id": g.event_id}, {"state": 1})
                ),
                30,
                "every nudge of the gathering sent",
            )
    finally:
        producer.close()
    assert requests_per_person(smtp, domain) == {"ann": 2, "ben": 1, "cat": 1, "lee": 1}
    assert max(pairs(svc, g.event_id).values()) == 1
    assert smtp.handler.count_by_followup().most_common(1)[0][1] == 1
