"""A person's data in follow-up, on the session's real SecantusDB with a real
SMTP server (aiosmtpd): the export part and its chunks, erasure (nothing of
the person left in any collection, figures unchanged, nothing comes back),
corrections, undone check-ins, the data-link email, the consent history, and
retention with a moved clock."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import quopri
import signal
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import Binary
from kafka import KafkaConsumer, KafkaProducer

from followup.adapters.mongo import (
    ATTENDANCE,
    CONSENT_HISTORY,
    CONTACTS,
    DELIVERIES,
    ERASED_PEOPLE,
    INTRODUCTIONS,
    NUDGES,
    RENDERED,
    RETENTION_POLICIES,
    SUPPRESSIONS,
)
from followup.bootstrap import MongoServices
from followup.domain.privacy import EXPORT_CHUNK_CHARS
from followup.service_layer import organizer, retention, tracking
from followup.service_layer.probe import SendPoint
from followup.service_layer.scheduling import run_scheduler_once
from followup.service_layer.sending import Sender, send_due_nudges
from tests.conftest import Infrastructure
from tests.followup.helpers import (
    Gathering,
    SmtpServer,
    data_link_requested,
    erasure_requested,
    export_requested,
    person_updated,
    retention_set,
)
from tests.followup.integration.conftest import apply
from tests.followup.integration.test_faults import wait_until, worker
from turnout_common.consumer import DEAD_LETTERS, PROCESSED
from turnout_common.contracts import CHECKIN_TOPIC, PRIVACY_TOPIC, registry
from turnout_common.emails import normalize_email
from turnout_common.envelope import Envelope
from turnout_common.kafka import ensure_topics
from turnout_common.outbox import OUTBOX
from turnout_common.privacy import email_digest, pseudonym

pytestmark = pytest.mark.integration

# A note in Greek, as an organizer may write it: every character is six once escaped in JSON.
NOTE = ("Ευχαριστούμε που ήρθατε! " * 200)[:4900]


class Person:
    def __init__(self, first: str, last: str, domain: str = "example.org") -> None:
        self.id = f"p-{uuid.uuid4().hex[:16]}"
        self.first, self.last = first, last
        self.email = f"{first}.{last}@{domain.title()}"  # as typed: mixed case

    @property
    def key(self) -> str:
        return normalize_email(self.email)


def staged(svc: MongoServices, event_type: str) -> list[Envelope]:
    """The messages of this type waiting in the outbox (no relay runs in these tests), oldest first."""
    docs = svc.db[OUTBOX].find({"type": event_type}).sort([("created_at", 1), ("seq", 1)])
    return [Envelope.from_json(bytes(doc["payload"])) for doc in docs]


def sent_to(smtp: SmtpServer, address: str) -> list[str]:
    return [item.kind for item in smtp.handler.received if item.to.lower() == address.lower()]


def _texts(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string inside a document, with binary values decompressed and decoded as an
    email is (quoted-printable), and field names too."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, bytes | Binary):
        raw = bytes(value)
        with contextlib.suppress(zlib.error):
            raw = zlib.decompress(raw)
        yield path, raw.decode("utf-8", "replace")
        yield path + "(qp)", quopri.decodestring(raw).decode("utf-8", "replace")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"{path}/{key}(name)", str(key)
            yield from _texts(item, f"{path}/{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _texts(item, f"{path}[{index}]")


def search(svc: MongoServices, needles: list[str]) -> list[str]:
    """Where any of ``needles`` occurs (case-insensitive) in any document of any collection."""
    lowered = [n.lower() for n in needles]
    hits = []
    for name in sorted(svc.db.list_collection_names()):
        for doc in svc.db[name].find():
            for path, text in _texts(doc):
                found = [n for n in lowered if n in text.lower()]
                if found:
                    hits.append(f"{name} {doc.get('_id')} {path}: {found}")
    return hits


def networking_evening(svc: MongoServices, org_id: str, alice: Person, bob: Person) -> Gathering:
    """Alice and Bob meet (Alice for the first time), are introduced, both say yes; Alice
    follows a link in her thank-you and rates it with a comment."""
    g = Gathering(org_id, kind="networking", title="Makers evening")
    apply(
        svc,
        [
            g.scheduled(),
            g.registered(
                alice.id, alice.first, alice.email, last_name=alice.last, offers=["Grant-Writing"], seeks=["design"]
            ),
            g.registered(bob.id, bob.first, bob.email, last_name=bob.last, offers=["Designs"], seeks=["grant writing"]),
            g.checked_in(alice.id, first_time=True),
            g.checked_in(bob.id),
            g.ended(),
        ],
    )
    organizer.update_event_settings(
        svc, org_id, g.event_id, {"content": {"photos_url": "https://photos.example.org/1"}}
    )
    run_scheduler_once(svc, "test")
    send_due_nudges(svc)
    for person in (alice, bob):
        (request,) = [n for n in svc.db[NUDGES].find({"person_id": person.id, "kind": "introduction_request"})]
        (intro,) = [i for i in svc.db[INTRODUCTIONS].find({"event_id": g.event_id})]
        assert request["state"] == "sent"
        tracking.accept_introduction(svc, intro["_id"], person.id)
    send_due_nudges(svc)
    thank_you = svc.db[NUDGES].find_one({"person_id": alice.id, "kind": "thank_you"})
    assert thank_you is not None
    assert tracking.record_click(svc, thank_you["_id"], "https://photos.example.org/1")
    assert tracking.record_feedback(svc, thank_you["_id"], 4, "Loved meeting Bob; the room was cold though")
    return g


# -- export --------------------------------------------------------------------------------------


def test_the_export_part_holds_everything_in_chunks(svc: MongoServices, smtp: SmtpServer, org_id: str) -> None:
    alice, bob = Person("Alicia", "Quenby"), Person("Bob", "Marlow")
    evening = networking_evening(svc, org_id, alice, bob)
    # Four meetings with a long note: the part is bigger than one chunk.
    for index in range(4):
        meeting = Gathering(org_id, kind="meeting", title=f"Board meeting {index}")
        apply(svc, [meeting.scheduled()])
        organizer.update_event_settings(svc, org_id, meeting.event_id, {"content": {"note": NOTE}})
        apply(
            svc,
            [
                meeting.registered(alice.id, alice.first, alice.email, last_name=alice.last),
                meeting.checked_in(alice.id),
                meeting.ended(),
            ],
        )
    run_scheduler_once(svc, "test")
    send_due_nudges(svc)
    assert Counter(sent_to(smtp, alice.email)) == {
        "thank_you": 5,
        "first_timer_welcome": 1,
        "introduction_request": 1,
        "introduction": 1,
    }

    request = export_requested(org_id, alice.id, alice.email)
    apply(svc, [request])

    chunks = staged(svc, "person.data_exported")
    assert len(chunks) >= 2  # bigger than one chunk
    for envelope in chunks:
        registry().validate(envelope)
        assert envelope.source == "/turnout/followup"
        assert envelope.subject == request.data["request_id"]
        assert envelope.data["service"] == "followup"
        assert envelope.data["chunk_count"] == len(chunks)
        assert len(envelope.data["chunk"]) <= EXPORT_CHUNK_CHARS
    assert [e.data["chunk_index"] for e in chunks] == list(range(len(chunks)))
    routed = {(doc["topic"], doc["key"]) for doc in svc.db[OUTBOX].find({"type": "person.data_exported"})}
    assert routed == {("turnout.privacy", request.data["request_id"])}

    part = json.loads("".join(e.data["chunk"] for e in chunks))
    assert part["person_id"] == alice.id and part["service"] == "followup"
    contact = part["contact"]
    assert (contact["first_name"], contact["last_name"], contact["email"]) == ("Alicia", "Quenby", alice.email)
    assert contact["consent_email"] is True and contact["unsubscribed"] is False
    assert [(h["change"], h["by"]) for h in part["consent_history"]] == [("granted", "registration")]
    assert len(part["attendance"]) == 5
    assert {row["event_id"] for row in part["attendance"]} >= {evening.event_id}
    evening_row = next(row for row in part["attendance"] if row["event_id"] == evening.event_id)
    assert evening_row["offers"] == ["Grant-Writing"] and evening_row["seeks"] == ["design"]
    kinds = Counter(m["kind"] for m in part["messages"])
    assert kinds == {"thank_you": 5, "first_timer_welcome": 1, "introduction_request": 1, "introduction": 1}
    for message in part["messages"]:
        assert message["state"] == "sent"
        (email,) = message["emails"]  # each as it was handed over: subject, text, HTML
        assert email["to"] == alice.email and email["subject"] and email["text"] and email["html"]
        assert "sending" in [d["id"].rsplit(":", 1)[1] for d in message["deliveries"]]
    meeting_thanks = [m for m in part["messages"] if m["kind"] == "thank_you" and m["event_title"].startswith("Board")]
    assert len(meeting_thanks) == 4 and all(NOTE[:200] in m["emails"][0]["text"] for m in meeting_thanks)
    rated = next(m for m in part["messages"] if m["kind"] == "thank_you" and m["event_id"] == evening.event_id)
    assert rated["clicked_urls"] == ["https://photos.example.org/1"]
    assert (rated["feedback_rating"], rated["feedback_comment"]) == (4, "Loved meeting Bob; the room was cold though")
    introduction = next(m for m in part["messages"] if m["kind"] == "introduction")
    assert bob.email in introduction["emails"][0]["text"]  # what she was sent, as sent
    (intro,) = part["introductions"]
    assert intro["with"] == "Bob M." and intro["state"] == "agreed" and intro["you_accepted"] is True
    assert intro["you_offer"] and intro["they_offer"]
    assert part["suppressions"] == []

    # Someone follow-up never heard of: a part with empty lists.
    unknown = export_requested(org_id, "p-never-seen", "nobody@example.org")
    apply(svc, [unknown])
    (only,) = [e for e in staged(svc, "person.data_exported") if e.subject == unknown.data["request_id"]]
    empty = json.loads(only.data["chunk"])
    assert empty["contact"] is None
    assert all(empty[name] == [] for name in ("attendance", "messages", "introductions", "suppressions"))


# -- erasure -------------------------------------------------------------------------------------


def test_erasure_leaves_nothing_of_the_person_and_nothing_brings_them_back(
    svc: MongoServices, smtp: SmtpServer, org_id: str
) -> None:
    alice, bob = Person("Alicia", "Quenby"), Person("Bob", "Marlow")
    evening = networking_evening(svc, org_id, alice, bob)
    # Another gathering's thank-you is planned for her, not sent yet; then she unsubscribes
    # (her address goes on the suppression list).
    later = Gathering(org_id, kind="workshop", title="Soldering workshop")
    registered_later = later.registered(alice.id, alice.first, alice.email, last_name=alice.last)
    checked_in_later = later.checked_in(alice.id)
    apply(svc, [later.scheduled(), registered_later, checked_in_later, later.ended()])
    fast = svc.settings
    svc.settings = type(fast)(**{**_fields(svc), "send_delay_seconds": 3600})
    run_scheduler_once(svc, "test")
    svc.settings = fast
    thank_you = svc.db[NUDGES].find_one({"person_id": alice.id, "kind": "thank_you", "event_id": evening.event_id})
    assert thank_you is not None
    tracking.unsubscribe(svc, thank_you["_id"], "one_click")
    # A message about her that was dead-lettered.
    svc.db[DEAD_LETTERS].insert_one(
        {"_id": "turnout.checkin:0:99", "value": registered_later.to_json(), "error": "a test dead letter"}
    )
    figures_before = organizer.figures(svc)
    counts_before = organizer.list_messages(svc, org_id, evening.event_id, limit=100, offset=0)["counts"]
    assert search(svc, [alice.id, alice.key, "Quenby"])  # she is everywhere before

    request = erasure_requested(org_id, alice.id, alice.email)
    apply(svc, [request])

    assert search(svc, [alice.id, alice.key, alice.email, "Alicia", "Quenby"]) == []
    (answer,) = staged(svc, "person.erased")
    assert answer.subject == request.data["request_id"] and answer.data["service"] == "followup"
    counts = answer.data["counts"]
    assert counts["contacts"] == 1 and counts["attendance"] == 2 and counts["introductions"] == 1
    assert counts["messages"] == 5 and counts["suppressions"] == 1 and counts["dead_letters"] == 1
    assert counts["messages_to_others_naming_them"] == 2  # Bob's request and introduction
    # The figures organizers see do not change: the records stay, under a stand-in.
    stand_in = pseudonym(org_id, alice.id)
    assert organizer.figures(svc) == figures_before
    assert organizer.list_messages(svc, org_id, evening.event_id, limit=100, offset=0)["counts"] == counts_before
    assert svc.db[ATTENDANCE].count_documents({"person_id": stand_in}) == 2
    assert svc.db[NUDGES].count_documents({"person_id": stand_in, "state": "sent"}) == 4
    assert svc.db[NUDGES].find_one({"person_id": stand_in, "event_id": later.event_id})["skip_reason"] == "erased"
    (intro,) = svc.db[INTRODUCTIONS].find({"event_id": evening.event_id})
    assert stand_in in intro["people"] and bob.id in intro["people"] and intro["offers"][stand_in] == []
    # Bob keeps what is his; his emails that named her lost their bodies.
    assert svc.db[CONTACTS].find_one({"_id": bob.id}) is not None
    bob_intro = svc.db[NUDGES].find_one({"person_id": bob.id, "kind": "introduction"})
    assert bob_intro is not None
    assert organizer.message_detail(svc, org_id, bob_intro["_id"])["rendered"] is None
    # Her unsubscribe is kept as the address's digest.
    digest = email_digest(org_id, alice.key)
    (kept,) = svc.db[SUPPRESSIONS].find({"email_digest": digest})
    assert (kept["reason"], kept["email"], kept["person_id"]) == ("unsubscribed", None, stand_in)
    tomb = svc.db[ERASED_PEOPLE].find_one({"_id": stand_in})
    assert tomb is not None and tomb["email_digest"] == digest and tomb["request_id"] == request.data["request_id"]
    assert svc.db[CONSENT_HISTORY].count_documents({}) == 1  # Bob's; hers are gone

    # Redelivered and replayed messages about her are ignored: no contact, no nudge, no email.
    received = len(smtp.handler.received)
    again = Gathering(org_id, kind="meeting", title="Open evening")
    apply(
        svc,
        [
            registered_later,
            checked_in_later,
            again.scheduled(),
            again.registered(alice.id, alice.first, alice.email, last_name=alice.last),
            again.checked_in(alice.id),
            person_updated(org_id, alice.id, "Alicia", alice.email),
            data_link_requested(org_id, alice.id, alice.email, "Alicia"),
            again.ended(),
        ],
    )
    run_scheduler_once(svc, "test")
    send_due_nudges(svc)
    assert svc.db[CONTACTS].find_one({"_id": alice.id}) is None
    assert svc.db[NUDGES].count_documents({"person_id": alice.id}) == 0
    assert len(smtp.handler.received) == received
    assert search(svc, [alice.id, alice.key, "Quenby"]) == []
    # A replayed registration under another id with her address (older than the erasure) too.
    replayed = dataclasses.replace(
        Gathering(org_id, kind="meeting").registered("p-other-id", "Alicia", alice.email, last_name="Quenby"),
        time="2020-01-01T00:00:00.000Z",
    )
    apply(svc, [replayed])
    assert svc.db[CONTACTS].find_one({"_id": "p-other-id"}) is None

    # She comes back later as somebody new, with the same address: welcome, but her old
    # unsubscribe still holds for the address.
    back = Person("Alicia", "Quenby")
    back.email = alice.email
    fresh = Gathering(org_id, kind="meeting", title="Spring meeting")
    apply(
        svc,
        [fresh.scheduled(), fresh.registered(back.id, "Alicia", back.email), fresh.checked_in(back.id), fresh.ended()],
    )
    run_scheduler_once(svc, "test")
    send_due_nudges(svc)
    assert svc.db[CONTACTS].find_one({"_id": back.id}) is not None
    assert svc.db[NUDGES].count_documents({"person_id": back.id}) == 0  # not reachable: suppressed
    assert len(smtp.handler.received) == received

    # A second request for the same person is answered too (nothing left to erase).
    second = erasure_requested(org_id, alice.id, alice.email)
    apply(svc, [second])
    answers = {e.subject: e.data["counts"] for e in staged(svc, "person.erased")}
    assert sum(answers[second.data["request_id"]].values()) == 0


class EraseWhenReached:
    """A send probe that erases a person when the sender reaches ``point`` the first time."""

    def __init__(self, svc: MongoServices, point: SendPoint, erasure: Envelope) -> None:
        self.svc, self.point, self.erasure = svc, point, erasure
        self.done = False

    def reached(self, point: SendPoint, handed_over: int) -> None:
        if point == self.point and not self.done:
            self.done = True
            apply(self.svc, [self.erasure])


def test_an_erasure_fences_messages_a_sender_already_claimed(svc: MongoServices, smtp: SmtpServer, org_id: str) -> None:
    alice, bob = Person("Alicia", "Quenby"), Person("Bob", "Marlow")
    g = Gathering(org_id, kind="meeting")
    apply(
        svc,
        [
            g.scheduled(),
            g.registered(alice.id, alice.first, alice.email, last_name=alice.last),
            g.registered(bob.id, bob.first, bob.email, last_name=bob.last),
            g.checked_in(alice.id, first_time=True),
            g.checked_in(bob.id),
            g.ended(),
        ],
    )
    run_scheduler_once(svc, "test")
    # The sender has rendered and claimed the batch (Alice's two messages among it) when
    # the erasure commits: it hands none of hers over, and sends Bob's.
    probe = EraseWhenReached(svc, "after_claim", erasure_requested(org_id, alice.id, alice.email))
    sender = Sender(svc, "fenced", probe)
    sender.send_once(threading.Event())
    assert probe.done
    assert [item.to for item in smtp.handler.received] == [bob.email]
    assert sender.totals.sent == 1
    stand_in = pseudonym(org_id, alice.id)
    states = {(n["kind"], n["state"], n.get("skip_reason")) for n in svc.db[NUDGES].find({"person_id": stand_in})}
    assert states == {("thank_you", "skipped", "erased"), ("first_timer_welcome", "skipped", "erased")}
    assert search(svc, [alice.id, alice.key, "Quenby"]) == []
    # Nothing is left claimed or in doubt; another pass sends nothing more.
    assert send_due_nudges(svc).handled == 0
    assert len(smtp.handler.received) == 1


def test_the_one_message_already_handed_over_is_recorded_under_the_stand_in(
    svc: MongoServices, smtp: SmtpServer, org_id: str
) -> None:
    """The window that remains: the sender journaled ``sending`` and is handing the message to
    the mail server when the erasure commits. It goes out; it is recorded under the pseudonym."""
    alice = Person("Alicia", "Quenby")
    g = Gathering(org_id, kind="meeting")
    apply(
        svc,
        [
            g.scheduled(),
            g.registered(alice.id, alice.first, alice.email, last_name=alice.last),
            g.checked_in(alice.id),
            g.ended(),
        ],
    )
    run_scheduler_once(svc, "test")
    probe = EraseWhenReached(svc, "before_send", erasure_requested(org_id, alice.id, alice.email))
    Sender(svc, "in-flight", probe).send_once(threading.Event())
    assert sent_to(smtp, alice.email) == ["thank_you"]
    stand_in = pseudonym(org_id, alice.id)
    (nudge,) = svc.db[NUDGES].find({"person_id": stand_in})
    assert nudge["state"] == "sent"
    (sent,) = staged(svc, "followup.sent")
    assert sent.data["person_id"] == stand_in and sent.subject == stand_in
    assert search(svc, [alice.id, alice.key, "Quenby"]) == []


# -- correction ----------------------------------------------------------------------------------


def test_a_corrected_address_gets_the_next_message_under_the_new_name(
    svc: MongoServices, smtp: SmtpServer, org_id: str
) -> None:
    g = Gathering(org_id, kind="workshop")
    person = f"p-{uuid.uuid4().hex[:12]}"
    registered = g.registered(person, "Carl", "carl@old.example.org", last_name="Typo")
    apply(svc, [g.scheduled(), registered, g.checked_in(person)])
    now = datetime.now(UTC)
    apply(
        svc,
        [
            person_updated(
                org_id, person, "Carlos", "carlos@new.example.org", previous_email="carl@old.example.org", at=now
            )
        ],
    )
    # Older news arriving late changes nothing: the registration replayed, an earlier correction.
    apply(
        svc, [registered, person_updated(org_id, person, "Karl", "karl@older.example.org", at=now - timedelta(hours=1))]
    )
    contact = svc.db[CONTACTS].find_one({"_id": person})
    assert contact is not None
    assert (contact["first_name"], contact["last_name"], contact["email"]) == (
        "Carlos",
        "Tester",
        "carlos@new.example.org",
    )
    apply(svc, [g.ended()])
    run_scheduler_once(svc, "test")
    send_due_nudges(svc)
    (item,) = smtp.handler.received
    assert item.to == "carlos@new.example.org"
    assert item.message["To"].addresses[0].display_name == "Carlos Tester"
    assert item.message.get_body(("plain",)).get_content().startswith("Hi Carlos,")


def test_an_unsubscribe_follows_the_person_to_the_corrected_address(
    svc: MongoServices, smtp: SmtpServer, org_id: str
) -> None:
    first, second = Gathering(org_id, kind="meeting"), Gathering(org_id, kind="meeting", title="Second")
    person = f"p-{uuid.uuid4().hex[:12]}"
    apply(
        svc,
        [
            first.scheduled(),
            first.registered(person, "Dora", "dora@old.example.org"),
            first.checked_in(person),
            first.ended(),
        ],
    )
    run_scheduler_once(svc, "test")
    send_due_nudges(svc)
    nudge = svc.db[NUDGES].find_one({"person_id": person})
    assert nudge is not None
    tracking.unsubscribe(svc, nudge["_id"], "link")
    apply(svc, [person_updated(org_id, person, "Dora", "dora@new.example.org", previous_email="dora@old.example.org")])
    assert {doc["email_norm"] for doc in svc.db[SUPPRESSIONS].find({"org_id": org_id})} == {"dora@new.example.org"}
    apply(
        svc,
        [
            second.scheduled(),
            second.registered(person, "Dora", "dora@new.example.org"),
            second.checked_in(person),
            second.ended(),
        ],
    )
    run_scheduler_once(svc, "test")
    send_due_nudges(svc)
    assert [item.to for item in smtp.handler.received] == ["dora@old.example.org"]


# -- undone check-ins ----------------------------------------------------------------------------


def test_an_undone_checkin_turns_the_thank_you_into_a_we_missed_you(
    svc: MongoServices, smtp: SmtpServer, org_id: str
) -> None:
    g = Gathering(org_id, kind="workshop")
    sam, tia, uma = (f"p-{name}-{uuid.uuid4().hex[:8]}" for name in ("sam", "tia", "uma"))
    apply(
        svc,
        [
            g.scheduled(),
            *(g.registered(p, p.split("-")[1].title(), f"{p}@example.org") for p in (sam, tia, uma)),
            *(g.checked_in(p) for p in (sam, tia, uma)),
            g.ended(),
        ],
    )
    # Thank-yous go out two hours after the end; Tia's went out early (resolved by hand).
    svc.settings = type(svc.settings)(**{**_fields(svc), "send_delay_seconds": 7200})
    run_scheduler_once(svc, "test")
    assert {n["kind"] for n in svc.db[NUDGES].find({"event_id": g.event_id})} == {"thank_you"}
    tia_thanks = svc.db[NUDGES].find_one({"person_id": tia, "kind": "thank_you"})
    assert tia_thanks is not None
    svc.db[NUDGES].update_one({"_id": tia_thanks["_id"]}, {"$set": {"state": "sent", "sent_at": datetime.now(UTC)}})

    # Sam's check-in was a mistake; so was Tia's (thanked already); Uma's too, but she is
    # checked in again afterwards.
    apply(
        svc,
        [g.checkin_undone(sam), g.checkin_undone(tia), g.checkin_undone(uma), g.checked_in(uma, at=datetime.now(UTC))],
    )
    states = {(n["person_id"], n["kind"]): (n["state"], n.get("skip_reason")) for n in svc.db[NUDGES].find()}
    assert states[(sam, "thank_you")] == ("skipped", "checkin_undone")
    assert states[(uma, "thank_you")] == ("skipped", "checkin_undone")  # undone first; the new check-in ...
    run_scheduler_once(svc, "test")
    states = {(n["person_id"], n["kind"]): n["state"] for n in svc.db[NUDGES].find()}
    assert states[(sam, "we_missed_you")] == "scheduled"
    assert (tia, "we_missed_you") not in states  # she got the thank-you: nothing more
    assert states[(uma, "thank_you")] == "skipped" and (uma, "we_missed_you") not in states
    later = datetime.now(UTC) + timedelta(hours=3)
    svc.clock = lambda: later
    send_due_nudges(svc)
    assert sent_to(smtp, f"{sam}@example.org") == ["we_missed_you"]
    assert sent_to(smtp, f"{tia}@example.org") == []
    row = svc.db[ATTENDANCE].find_one({"event_id": g.event_id, "person_id": uma})
    assert row is not None and row["checked_in_at"] is not None  # ... counts: she attended


def _fields(svc: MongoServices) -> dict[str, Any]:
    return {name: getattr(svc.settings, name) for name in svc.settings.__dataclass_fields__}


# -- the data-link email -------------------------------------------------------------------------


def test_the_data_link_email_is_sent_once_whatever_the_consent(
    svc: MongoServices, smtp: SmtpServer, org_id: str
) -> None:
    g = Gathering(org_id, kind="meeting")
    person = f"p-{uuid.uuid4().hex[:12]}"
    apply(svc, [g.scheduled(), g.registered(person, "Vera", "vera@example.org", consent=False)])
    request = data_link_requested(org_id, person, "vera@example.org", "Vera", purpose="erasure")
    apply(svc, [request])
    apply(svc, [request])  # redelivered
    assert send_due_nudges(svc).sent == 1
    assert send_due_nudges(svc).handled == 0
    (item,) = smtp.handler.received
    assert item.to == "vera@example.org"
    assert item.message["Subject"] == "Confirm erasing your data at Riverside Food Bank"
    assert item.message["List-Unsubscribe"] is None
    text = item.message.get_body(("plain",)).get_content()
    assert request.data["link"] in text and text.startswith("Hi Vera,")
    assert request.data["link"] in item.message.get_body(("html",)).get_content()
    # Not a follow-up: nothing about it on turnout.followup.
    assert [e.type for e in staged(svc, "followup.sent")] == []
    assert staged(svc, "followup.scheduled") == []


def test_no_data_link_to_a_suppressed_address(svc: MongoServices, smtp: SmtpServer, org_id: str) -> None:
    organizer.add_suppression(svc, org_id, "gone@example.org", "bounced in our old system")
    apply(svc, [data_link_requested(org_id, "p-gone", "Gone@Example.org", "Wes")])
    report = send_due_nudges(svc)
    assert (report.sent, report.skipped) == (0, 1)
    assert smtp.handler.received == []
    (nudge,) = svc.db[NUDGES].find({"kind": "data_link"})
    assert (nudge["state"], nudge["skip_reason"]) == ("skipped", "suppressed")


# -- consent history -----------------------------------------------------------------------------


def test_consent_history_records_each_change_and_every_nudge_honours_the_current_consent(
    svc: MongoServices, smtp: SmtpServer, org_id: str
) -> None:
    g = Gathering(org_id, kind="workshop")
    xia, yan, zoe = (f"p-{name}-{uuid.uuid4().hex[:8]}" for name in ("xia", "yan", "zoe"))
    apply(
        svc,
        [
            g.scheduled(),
            g.registered(xia, "Xia", "xia@example.org", source="walk-in"),
            g.registered(yan, "Yan", "yan@example.org", consent=False, source="import"),
            g.registered(zoe, "Zoe", "zoe@example.org", source="import"),
        ],
    )
    apply(svc, [Gathering(org_id, kind="meeting").registered(yan, "Yan", "yan@example.org", source="public")])
    apply(svc, [Gathering(org_id, kind="meeting").registered(xia, "Xia", "xia@example.org")])  # no change
    apply(svc, [*(g.checked_in(p) for p in (xia, yan, zoe)), g.ended()])
    svc.settings = type(svc.settings)(**{**_fields(svc), "send_delay_seconds": 3600})
    run_scheduler_once(svc, "test")
    # Planned with consent; withdrawn before the send: Xia by the link, Zoe by the organizer.
    xia_thanks = svc.db[NUDGES].find_one({"person_id": xia})
    assert xia_thanks is not None
    tracking.unsubscribe(svc, xia_thanks["_id"], "link")
    organizer.add_suppression(svc, org_id, "zoe@example.org", "asked us by phone")
    later = datetime.now(UTC) + timedelta(hours=2)
    svc.clock = lambda: later
    report = send_due_nudges(svc)
    assert [item.to for item in smtp.handler.received] == ["yan@example.org"]
    assert report.skipped == 2
    skipped = {n["person_id"]: n["skip_reason"] for n in svc.db[NUDGES].find({"state": "skipped"})}
    assert skipped == {xia: "unsubscribed", zoe: "unsubscribed"}  # blocking an address unsubscribes its contacts
    # The organizer lifts their block: Zoe may hear from us again (the history says so).
    organizer.remove_suppression(svc, org_id, "zoe@example.org")

    def history(person: str) -> list[tuple[str, str]]:
        return [(d["change"], d["by"]) for d in svc.db[CONSENT_HISTORY].find({"person_id": person}).sort("at", 1)]

    assert history(xia) == [("granted", "walk-in"), ("withdrawn", "unsubscribe_link")]
    assert history(yan) == [("granted", "registration")]
    assert history(zoe) == [("granted", "import"), ("withdrawn", "organizer"), ("granted", "organizer")]
    unsubscribed = svc.db[CONSENT_HISTORY].find_one({"person_id": xia, "change": "withdrawn"})
    assert unsubscribed is not None and unsubscribed["followup_id"] == xia_thanks["_id"]
    assert unsubscribed["message_id"] == staged(svc, "contact.unsubscribed")[0].id
    # A hard bounce withdraws too.
    tracking.record_bounce(svc, email="yan@example.org", bounce_type="hard", reason="550 5.1.1 no such user")
    assert history(yan)[-1] == ("withdrawn", "bounce")


# -- retention -----------------------------------------------------------------------------------


def test_retention_removes_bodies_then_the_journal_then_link_tracking_as_the_clock_moves(
    svc: MongoServices, smtp: SmtpServer, org_id: str
) -> None:
    now = datetime.now(UTC)
    apply(svc, [retention_set(org_id, now, message_bodies=1, delivery_journal=2, tracking_events=3)])
    apply(svc, [retention_set(org_id, now - timedelta(days=1), message_bodies=24)])  # older: ignored
    assert svc.db[RETENTION_POLICIES].find_one({"_id": org_id})["periods"]["message_bodies"] == 1
    other_org = f"org-{uuid.uuid4().hex[:8]}"  # no policy: the defaults (6, 12, 12 months)
    ids: dict[str, str] = {}
    for org in (org_id, other_org):
        g = Gathering(org, kind="meeting")
        person = f"p-{uuid.uuid4().hex[:12]}"
        apply(
            svc, [g.scheduled(), g.registered(person, "Ray", f"{person}@example.org"), g.checked_in(person), g.ended()]
        )
        organizer.update_event_settings(
            svc, org, g.event_id, {"content": {"photos_url": "https://photos.example.org/2"}}
        )
        run_scheduler_once(svc, "test")
        send_due_nudges(svc)
        nudge = svc.db[NUDGES].find_one({"person_id": person})
        assert nudge is not None and nudge["state"] == "sent"
        tracking.record_click(svc, nudge["_id"], "https://photos.example.org/2")
        ids[org] = nudge["_id"]
    figures = organizer.figures(svc)

    def at(days: int) -> retention.SweepReport:
        moved = now + timedelta(days=days)
        svc.clock = lambda: moved
        report = retention.sweep(svc)
        assert report is not None
        assert retention.sweep(svc) is None  # swept already: not due again before the interval
        return report

    def state(org: str) -> tuple[bool, bool, bool]:
        fid = ids[org]
        nudge = svc.db[NUDGES].find_one({"_id": fid})
        assert nudge is not None and nudge["state"] == "sent" and nudge["click_count"] == 1
        body = svc.db[RENDERED].find_one({"_id": f"{fid}:1"})
        assert body is not None and body["subject"]  # what was sent, and when, stays
        return (
            body.get("raw") is not None,
            svc.db[DELIVERIES].count_documents({"_id": {"$in": [f"{fid}:1:sending", f"{fid}:1:accepted"]}}) > 0,
            bool(nudge.get("clicked_urls")),
        )

    assert at(0).changed == 0
    assert state(org_id) == (True, True, True)
    assert at(40).bodies_removed == 1
    assert state(org_id) == (False, True, True)
    detail = organizer.message_detail(svc, org_id, ids[org_id])
    assert detail["rendered"] is None and detail["body_removed_at"] is not None and detail["status"] == "clicked"
    assert at(70).journal_entries_deleted == 1  # its ``sending`` (the last of a batch is settled directly)
    assert state(org_id) == (False, False, True)
    assert at(100).messages_untracked == 1
    assert state(org_id) == (False, False, False)
    assert state(other_org) == (True, True, True)  # the defaults are longer
    assert organizer.figures(svc) == figures  # counts and figures stay
    # Past the tracking period, a click is counted, and announced no more.
    clicks = len(staged(svc, "followup.clicked"))
    assert not tracking.record_click(svc, ids[org_id], "https://photos.example.org/2")
    assert len(staged(svc, "followup.clicked")) == clicks
    assert at(400).bodies_removed == 1  # the other organization's, after six months
    assert state(other_org) == (False, False, False)


# -- through the broker ---------------------------------------------------------------------------


def read_privacy_topic(
    infra: Infrastructure, org_id: str, done: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    consumer = KafkaConsumer(
        PRIVACY_TOPIC,
        bootstrap_servers=infra.bootstrap,
        group_id=f"privacy-reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        consumer_timeout_ms=1000,
    )
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and not done(found):
            for record in consumer:
                message = json.loads(record.value)
                if message["data"].get("org_id") == org_id:
                    found.append(message)
    finally:
        consumer.close()
    return found


def test_the_worker_answers_checkins_requests_on_the_privacy_topic(
    svc: MongoServices, smtp: SmtpServer, org_id: str, followup_env: dict[str, str], infra: Infrastructure
) -> None:
    """The worker process consumes checkin's requests from the broker; the relay publishes the
    answers on turnout.privacy; a redelivered erasure request is answered once."""
    ensure_topics(infra.bootstrap, 6)
    g = Gathering(org_id, kind="meeting")
    person = Person("Nia", "Brooks")
    export = export_requested(org_id, person.id, person.email)
    erasure = erasure_requested(org_id, person.id, person.email)
    link = data_link_requested(org_id, person.id, person.email, "Nia")
    env = {**followup_env, "FOLLOWUP_CONSUMER_GROUP": f"followup-privacy-{uuid.uuid4().hex[:8]}"}
    relay = subprocess.Popen(
        [sys.executable, "-m", "followup.entrypoints.relay"],
        env={**os.environ, **env, "LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with worker(env, FOLLOWUP_SENDER_THREADS="1"):
            producer = KafkaProducer(bootstrap_servers=infra.bootstrap, acks="all")

            def publish(*messages: Envelope) -> None:
                for message in messages:
                    key = str(message.data[registry().route(message.type).key_field])
                    producer.send(CHECKIN_TOPIC, key=key.encode(), value=message.to_json())
                producer.flush()

            publish(g.scheduled(), g.registered(person.id, person.first, person.email, last_name=person.last), link)
            wait_until(lambda: sent_to(smtp, person.email) == ["data_link"], 60, "the data-link email")
            publish(export)
            wait_until(
                # (The worker's new consumer group also reads what earlier tests left on the topic.)
                lambda: (
                    svc.db[PROCESSED].find_one({"_id": export.id}) is not None
                    and not staged(svc, "person.data_exported")
                ),
                60,
                "the export relayed",
            )
            publish(erasure, erasure)  # redelivered
            answers = read_privacy_topic(infra, org_id, lambda found: any(m["type"] == "person.erased" for m in found))
            time.sleep(2.0)  # a second answer would be right behind the first
            producer.close()
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(20)
    everything = read_privacy_topic(infra, org_id, lambda found: len(found) >= len(answers))
    erased = [m for m in everything if m["type"] == "person.erased"]
    assert len({m["id"] for m in erased}) == 1 and erased[0]["subject"] == erasure.data["request_id"]
    chunks = [m for m in everything if m["type"] == "person.data_exported"]
    part = json.loads("".join(m["data"]["chunk"] for m in sorted(chunks, key=lambda m: m["data"]["chunk_index"])))
    assert part["contact"]["email"] == person.email
    assert [m["kind"] for m in part["messages"]] == ["data_link"]
    assert sent_to(smtp, person.email) == ["data_link"]
    assert search(svc, [person.id, person.key, person.last]) == []
