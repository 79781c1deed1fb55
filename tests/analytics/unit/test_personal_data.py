"""A person's data in analytics without a database: undone check-ins and
corrections in the fold, erasure (figures unchanged, nothing personal left,
a rebuild from the masked archive says the same), exports and their chunks,
late messages about erased people, and the retention sweep on a moved clock."""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analytics.domain.people import (
    PERSON_TYPES,
    PersonState,
    cohort_counters,
    fold_person,
    loyalty_counters,
    merged,
    summarize,
)
from analytics.domain.privacy import REMOVED, chunks, detail_fields, masked_fields
from analytics.domain.registrations import RegistrationState, event_counters, fold_registration, lane_counters
from analytics.service_layer.data_requests import Requests, as_archived, as_received
from analytics.service_layer.projector import apply_batch, apply_messages
from analytics.service_layer.rebuild import rebuild
from analytics.service_layer.retention import sweep
from tests.analytics.history import History, Scripted, scripted_history
from tests.analytics.unit.fakes import FakeGenerations, FakeProjectionStore, FakeRecords
from turnout_common.contracts import registry
from turnout_common.envelope import Envelope
from turnout_common.privacy import ERASED_NAME, pseudonym

NOW = datetime(2026, 3, 15, 18, 0, tzinfo=UTC)


def _checkin(minutes: int, received: int | None = None, message_kiosk: str | None = "k1") -> dict[str, Any]:
    received = minutes if received is None else received
    return {
        "scanned_at": f"2026-01-01T17:{minutes:02d}:00Z",
        "received_at": f"2026-01-01T17:{received:02d}:00Z",
        "event_starts_at": "2026-01-01T17:00:00Z",
        "event_id": "e1",
        "event_kind": "workshop",
        "kiosk_id": message_kiosk,
        "method": "qr",
        "first_time_ever": True,
    }


def _undo(minutes: int) -> dict[str, Any]:
    return {"event_id": "e1", "undone_at": f"2026-01-01T17:{minutes:02d}:00Z", "checked_in_at": "x", "reason": ""}


def _checkout(minutes: int) -> dict[str, Any]:
    return {
        "event_id": "e1",
        "scanned_at": f"2026-01-01T19:{minutes:02d}:00Z",
        "received_at": f"2026-01-01T19:{minutes:02d}:00Z",
        "kiosk_id": "k9",
        "method": "qr",
        "hours": 2.0,
    }


# -- undone check-ins ---------------------------------------------------------------------------


def test_an_undone_check_in_leaves_the_figures_and_a_later_one_counts_again() -> None:
    state = RegistrationState("r1", "e1", "o1", "p1")
    fold_registration(state, "attendee.registered", {"status": "registered", "source": "api"}, "m1")
    fold_registration(state, "attendee.checked_in", _checkin(2), "m2")
    assert event_counters(state)["checked_in"] == 1
    fold_registration(state, "attendee.checkin_undone", _undo(5), "m3")
    assert event_counters(state) == {"registered": 1, "not_arrived": 1}
    assert lane_counters(state) == {}
    # Scanned again after the undo: one arrival, at the new scan's time, in its bucket.
    fold_registration(state, "attendee.checked_in", _checkin(12, message_kiosk="k2"), "m4")
    assert event_counters(state) == {
        "registered": 1,
        "checked_in": 1,
        "first_timers": 1,
        "methods.qr": 1,
        "arrivals.10": 1,
    }
    assert lane_counters(state) == {"k2": {"checked_in": 1, "arrivals.10": 1}}


def test_an_undo_voids_the_check_out_of_the_undone_visit() -> None:
    state = RegistrationState("r1", "e1", "o1", "p1")
    fold_registration(state, "attendee.checked_in", _checkin(2), "m1")
    fold_registration(state, "attendee.checked_out", _checkout(0), "m2")
    assert event_counters(state)["volunteer_centihours"] == 200
    fold_registration(state, "attendee.checkin_undone", {**_undo(0), "undone_at": "2026-01-01T19:30:00Z"}, "m3")
    assert "volunteer_centihours" not in event_counters(state) and "checked_out" not in event_counters(state)
    assert state.checkout is None  # and a check-out's device is never kept
    assert all(scan.kiosk_id is None for scan in state.all_checkouts())


@pytest.mark.parametrize("seed", range(6))
def test_check_ins_and_undos_in_any_order_give_the_same_registration(seed: int) -> None:
    messages = [
        ("attendee.registered", {"status": "registered", "source": "api"}, "m1"),
        ("attendee.checked_in", _checkin(2), "m2"),
        ("attendee.checkin_undone", _undo(5), "m3"),
        ("attendee.checked_in", _checkin(12), "m4"),
        ("attendee.checkin_undone", _undo(20), "m5"),
        ("attendee.checked_in", _checkin(25, received=26), "m6"),
        ("attendee.checked_in", _checkin(30), "m7"),  # a second scan: not a second arrival
    ]
    expected = RegistrationState("r1", "e1", "o1", "p1")
    for message in messages:
        fold_registration(expected, *message)
    assert expected.checkin is not None and expected.checkin.message_id == "m6"
    assert [scan.message_id for scan in expected.other_checkins] == ["m7"]
    shuffled = messages * 2
    random.Random(seed).shuffle(shuffled)
    state = RegistrationState("r1", "e1", "o1", "p1")
    for message in shuffled:
        fold_registration(state, *message)
    assert state.to_doc() == expected.to_doc()
    assert RegistrationState.from_doc(state.to_doc()) == state


def test_an_undone_visit_leaves_the_persons_history_cohort_and_streak() -> None:
    state = PersonState("p1", "o1")
    for month, event in ((1, "a"), (2, "b"), (3, "c")):
        data = {
            "event_id": event,
            "scanned_at": f"2026-{month:02d}-10T17:00:00Z",
            "received_at": f"2026-{month:02d}-10T17:00:01Z",
            "event_starts_at": f"2026-{month:02d}-10T17:00:00Z",
            "event_kind": "networking",
            "first_time_ever": month == 1,
        }
        fold_person(state, "attendee.checked_in", data, (NOW, f"m{month}"))
    assert summarize(state)["events_attended"] == 3 and summarize(state)["streak_longest"] == 3
    undo = {"event_id": "b", "undone_at": "2026-02-10T17:05:00Z"}
    fold_person(state, "attendee.checkin_undone", undo, (NOW, "u1"))
    summary = summarize(state)
    assert (summary["events_attended"], summary["streak_longest"], summary["months"]) == (
        2,
        1,
        ["2026-01", "2026-03"],
    )
    assert cohort_counters(state) == {"2026-01": {"size": 1, "returned": 1, "m0": 1, "m2": 1}}
    assert loyalty_counters(state) == {"2": {"people": 1}}
    again = PersonState.from_doc(state.to_doc())
    assert again == state and not again.visits["b"].attended


def test_scripted_history_with_undos_gives_the_same_figures_in_any_order(scripted: Scripted) -> None:
    history = copy.deepcopy(scripted.history)
    e2 = scripted.events["e2"]
    history.undo_check_in(e2, scripted.people["gus"], 20)  # the walk-in was checked in by mistake
    history.undo_check_in(e2, scripted.people["dee"], 15)
    history.check_in(e2, scripted.people["dee"], 30, kiosk="door-b")  # and came back later
    messages = history.messages
    expected = _project(messages, 500)
    e2_id = e2["event_id"]
    assert expected.event_counters[e2_id]["checked_in"] == 2  # ana and dee (again); gus undone
    assert expected.event_counters[e2_id]["arrivals"] == {"0": 1, "30": 1}
    assert summarize(expected.people[scripted.people["gus"]])["events_attended"] == 0
    rng = random.Random(5)
    shuffled = messages + rng.sample(messages, 20)
    rng.shuffle(shuffled)
    assert _project(shuffled, rng.randint(1, 30)).figures() == expected.figures()


@pytest.mark.parametrize("seed", range(4))
def test_two_states_of_one_person_merge_into_what_folding_everything_gives(scripted: Scripted, seed: int) -> None:
    ana = scripted.people["ana"]
    history = copy.deepcopy(scripted.history)
    history.undo_check_in(scripted.events["e2"], ana, 20)
    history.check_in(scripted.events["e2"], ana, 25)
    history.correct(ana, "Anabel", "Q", None, NOW)
    mine = [m for m in history.messages if m.data.get("person_id") == ana and m.type in PERSON_TYPES]
    rng = random.Random(seed)
    rng.shuffle(mine)
    cut = rng.randint(1, len(mine) - 1)
    states = []
    for part in (mine, mine[:cut], mine[cut:]):
        state = PersonState(ana, history.org_id)
        for message in part:
            fold_person(state, message.type, message.data, (NOW, message.id))
        states.append(state)
    whole, one, other = states
    assert merged(one, other).to_doc() == whole.to_doc()
    assert merged(other, one).to_doc() == whole.to_doc()


# -- corrections ----------------------------------------------------------------------------------


def test_a_correction_renames_the_person_and_an_older_registration_does_not_undo_it() -> None:
    state = PersonState("p1", "o1")
    registered = {"registered_at": "2026-01-01T10:00:00Z", "first_name": "Jon", "last_name": "Smyth"}
    corrected = {"updated_at": "2026-01-05T10:00:00Z", "first_name": "John", "last_name": "Smith"}
    fold_person(state, "person.updated", corrected, (NOW, "m2"))
    fold_person(state, "attendee.registered", registered, (NOW, "m1"))  # read later, happened earlier
    assert (state.first_name, state.last_name) == ("John", "Smith")
    later = {**registered, "registered_at": "2026-02-01T10:00:00Z", "first_name": "Johnny"}
    fold_person(state, "attendee.registered", later, (NOW, "m3"))
    assert state.first_name == "Johnny"


# -- masking rules ----------------------------------------------------------------------------------


def test_masking_replaces_the_id_and_drops_personal_fields_only_of_the_erased_person() -> None:
    alias = pseudonym("o1", "p1")
    registered = {
        "org_id": "o1",
        "person_id": "p1",
        "first_name": "Zed",
        "last_name": "Quill",
        "email": "zed@example.org",
        "offers": ["forklift"],
        "seeks": [],
        "status": "registered",
        "registered_at": "2026-01-01T10:00:00Z",
    }
    assert masked_fields(registered, "p1", alias) == {
        "person_id": alias,
        "first_name": ERASED_NAME,
        "last_name": "",
        "email": None,
        "offers": [],
    }
    introduction = {"org_id": "o1", "person_id": "p2", "other_person_id": "p1", "introduction_id": "i1"}
    assert masked_fields(introduction, "p1", alias) == {"other_person_id": alias}
    assert masked_fields(registered, "p9", pseudonym("o1", "p9")) == {}


def test_retention_strips_only_details_no_figure_reads() -> None:
    checked_in = {**_checkin(2), "override": True, "visit_number": 4}
    assert detail_fields("attendee.checked_in", checked_in, ["checkin_details"]) == {
        "override": REMOVED,
        "visit_number": REMOVED,
    }
    assert detail_fields("attendee.checked_in", checked_in, ["tracking_events"]) == {}
    clicked = {"url": "https://x.example/?t=abc", "clicked_at": "2026-01-01T10:00:00Z"}
    assert detail_fields("followup.clicked", clicked, ["tracking_events"]) == {"url": ""}


def test_chunks_join_back_to_the_text() -> None:
    text = json.dumps({"a": "é" * 1000, "b": list(range(300))})
    pieces = chunks(text, 97)
    assert all(len(piece) <= 97 for piece in pieces) and "".join(pieces) == text
    assert chunks("", 10) == [""]


def test_a_message_masked_for_the_archive_comes_back_as_received_on_a_retry() -> None:
    history = History()
    history.data_link("p1", "zed@example.org", "Zed", NOW)
    message = history.messages[0]
    original = copy.deepcopy(message.to_dict())
    as_archived([message], {pseudonym(history.org_id, "p1")})
    assert message.data["person_id"] == pseudonym(history.org_id, "p1") and message.subject != "p1"
    assert message.data["email"] is None and message.data["link"] == ""
    as_received([message])
    assert message.to_dict() == original


# -- erasure and export, on fakes -------------------------------------------------------------------


@pytest.fixture(scope="module")
def scripted() -> Scripted:
    return scripted_history(NOW)


def _project(messages: list[Envelope], batch: int) -> FakeProjectionStore:
    store = FakeProjectionStore()
    for start in range(0, len(messages), batch):
        apply_batch(store, messages[start : start + batch])
    return store


class Consumer:
    """What the consumer does with each batch: apply it (the handler), then archive it."""

    def __init__(self) -> None:
        self.store = FakeProjectionStore()
        self.records = FakeRecords()
        self.published: list[Envelope] = []
        self.seen: set[str] = set()

    def consume(self, messages: list[Envelope], batch: int = 40, chunk_chars: int = 200_000) -> None:
        for start in range(0, len(messages), batch):
            fresh = [m for m in messages[start : start + batch] if m.id not in self.seen]
            requests = Requests(self.store, self.records, self.publish, lambda: NOW, chunk_chars=chunk_chars)
            apply_messages(requests, fresh)
            self.records.add(fresh, NOW)
            self.seen |= {m.id for m in fresh}

    def publish(self, message: Envelope) -> None:
        registry().validate(message)  # as the unit of work does: a broken answer fails the batch
        self.published.append(message)

    def answers(self, kind: str) -> list[Envelope]:
        return [m for m in self.published if m.type == kind]


def _figures(store: FakeProjectionStore) -> dict[str, Any]:
    """What the organization's figures say (not who)."""
    figures = store.figures()
    return {key: figures[key] for key in ("event_counters", "lanes", "cohorts", "funnel", "loyalty", "events")}


def _mentions(value: Any, needles: list[str]) -> list[str]:
    text = json.dumps(value, default=str)
    return [needle for needle in needles if needle in text]


def test_an_erasure_keeps_every_figure_and_leaves_nothing_personal(scripted: Scripted) -> None:
    history = copy.deepcopy(scripted.history)
    ana = scripted.people["ana"]
    history.correct(ana, "Anabel", "Quixote-Unique", "anabel@example.org", NOW - timedelta(days=3))
    history.data_link(ana, "anabel@example.org", "Anabel", NOW - timedelta(days=2))
    history.introduce(scripted.events["e2"], scripted.people["dee"], ana, NOW - timedelta(days=2))
    consumer = Consumer()
    consumer.consume(history.messages)
    consumer.records.leftovers = [f"dead letter about {ana}", "dead letter about someone else"]
    before = _figures(consumer.store)
    assert not consumer.answers("person.erased")

    request = history.data_request("erasure", ana, "anabel@example.org", NOW)
    consumer.consume(history.messages)
    alias = pseudonym(history.org_id, ana)
    assert _figures(consumer.store) == before
    assert ana not in consumer.store.people and alias in consumer.store.people
    assert consumer.store.people[alias].first_name == ERASED_NAME
    assert summarize(consumer.store.people[alias])["events_attended"] == 3
    needles = [ana, "Anabel", "Quixote-Unique", "anabel@example.org", f"{ana}@example.org", "SECRET-TOKEN"]
    assert _mentions(consumer.store.figures(), needles) == []
    assert _mentions(consumer.records.archive, needles) == []
    assert _mentions(consumer.records.tombstones, needles) == []
    assert consumer.records.leftovers == ["dead letter about someone else"]
    (erased,) = consumer.answers("person.erased")
    assert erased.data["request_id"] == request and erased.subject == request
    counts = erased.data["counts"]
    assert counts["people"] == 1 and counts["registration_facts"] == 4 and counts["dead_letters"] == 1
    assert counts["archived_messages"] >= 15

    # A rebuild from the masked archive says exactly what the live projections say.
    archived = [Envelope.from_dict(doc["envelope"]) for doc in consumer.records.archive.values()]
    assert _project(archived, 25).figures() == consumer.store.figures()

    # A late message about her (never applied) counts, anonymously; a replayed one is skipped by id.
    late = History(org_id=history.org_id)
    late.registrations = dict(history.registrations)
    e4 = scripted.events["e4"]
    late.visits[ana] = 3
    late.check_in(e4, ana, 40)
    consumer.consume(late.messages + history.messages[:5])
    assert _figures(consumer.store)["event_counters"][e4["event_id"]]["checked_in"] == 2
    assert summarize(consumer.store.people[alias])["events_attended"] == 4
    assert _mentions(consumer.store.figures(), needles) == [] and _mentions(consumer.records.archive, needles) == []


def test_an_erasure_of_someone_unknown_and_a_second_erasure_answer_with_zero_counts() -> None:
    history = History()
    history.data_request("erasure", "stranger", None, NOW)
    consumer = Consumer()
    consumer.consume(history.messages)
    history.data_request("erasure", "stranger", "s@example.org", NOW)
    consumer.consume(history.messages)
    first, second = consumer.answers("person.erased")
    assert set(first.data["counts"].values()) == {0} and set(second.data["counts"].values()) == {0}
    assert set(consumer.records.tombstones) == {pseudonym(history.org_id, "stranger")}
    assert consumer.records.tombstones[pseudonym(history.org_id, "stranger")]["email_digest"] is None


def _part(consumer: Consumer, request_id: str) -> dict[str, Any]:
    chunks_ = [m for m in consumer.answers("person.data_exported") if m.data["request_id"] == request_id]
    chunks_.sort(key=lambda m: m.data["chunk_index"])
    assert [m.data["chunk_index"] for m in chunks_] == list(range(chunks_[0].data["chunk_count"]))
    return dict(json.loads("".join(m.data["chunk"] for m in chunks_)))


def test_an_export_holds_everything_about_the_person_in_chunks(scripted: Scripted) -> None:
    history = copy.deepcopy(scripted.history)
    ana = scripted.people["ana"]
    consumer = Consumer()
    consumer.consume(history.messages)
    request = history.data_request("export", ana, f"{ana}@example.org", NOW)
    consumer.consume(history.messages, chunk_chars=1000)
    chunks_ = consumer.answers("person.data_exported")
    assert len(chunks_) > 5 and all(len(m.data["chunk"]) <= 1000 for m in chunks_)
    assert {m.data["chunk_count"] for m in chunks_} == {len(chunks_)}
    part = _part(consumer, request)
    assert (part["service"], part["person_id"], part["request_id"]) == ("analytics", ana, request)
    assert part["summary"]["events_attended"] == 3 and len(part["registrations"]) == 4
    assert {visit["event_id"] for visit in part["person"]["visits"]} >= {
        scripted.events[name]["event_id"] for name in ("e1", "e2", "e3")
    }
    assert part["contributions"]["loyalty"] == {"3": {"people": 1}}
    kinds = {m["type"] for m in part["messages"]}
    assert {"attendee.registered", "attendee.checked_in", "followup.sent", "feedback.submitted"} <= kinds
    assert all(ana in json.dumps(m) for m in part["messages"])

    # Someone analytics never heard of: the same object, empty.
    unknown = history.data_request("export", "nobody", None, NOW)
    consumer.consume(history.messages)
    empty = _part(consumer, unknown)
    assert (empty["person"], empty["summary"], empty["registrations"], empty["messages"]) == (None, None, [], [])


def test_a_person_erased_while_a_rebuild_runs_does_not_come_back_with_it(scripted: Scripted) -> None:
    """The rebuild read her messages before the erasure masked them; once its
    generation is live, the people erased since it began are erased from it too."""
    from turnout_common.clock import utcnow

    generations = FakeGenerations()
    messages = scripted.history.messages + scripted.other.messages
    generations.archive.add(messages, utcnow() - timedelta(hours=2))
    apply_batch(generations.storage(generations.live), messages)
    before = _figures(generations.storage(generations.live))
    ana = scripted.people["ana"]
    alias = pseudonym(scripted.history.org_id, ana)
    erased = False

    def erase_meanwhile(_: object) -> None:
        nonlocal erased
        if not erased:  # the live worker applies the erasure (on the live generation)
            erased = True
            history = History(org_id=scripted.history.org_id)
            request = history.data_request("erasure", ana, None, NOW)
            live = Requests(generations.storage(generations.live), generations.records, lambda m: None, utcnow)
            apply_messages(live, [history.messages[-1]])
            assert request

    rebuild(generations, batch_size=20, switch_grace=0, on_progress=erase_meanwhile, progress_every=0)
    store = generations.storage(generations.live)
    assert generations.live == {"events": 1, "people": 1} and erased
    assert ana not in store.people and alias in store.people
    assert all(state.person_id != ana for state in store.registrations.values())
    assert _mentions(store.figures(), [ana]) == []
    assert _figures(store) == before


# -- retention --------------------------------------------------------------------------------------


def test_the_sweep_strips_old_details_by_each_organizations_policy() -> None:
    records = FakeRecords()
    short, default = History(), History()
    for history in (short, default):
        event = history.event("Shift", "volunteer_shift", NOW - timedelta(days=40))
        history.register(event, "p1")
        history.check_in(event, "p1", 3)
        history.followup("p1", "thank_you", event, NOW - timedelta(days=39), "clicked")
    short.policy(NOW - timedelta(days=50), checkin_details=1, tracking_events=1)
    consumer = Consumer()
    consumer.records = records
    consumer.consume(short.messages + default.messages)
    # Applied 40 days ago (as if).
    for doc in records.archive.values():
        doc["applied_at"] = NOW - timedelta(days=40)

    def details(history: History) -> dict[str, Any]:
        found = {}
        for doc in records.archive.values():
            data = doc["envelope"]["data"]
            if data.get("org_id") == history.org_id and doc["envelope"]["type"] in (
                "attendee.checked_in",
                "followup.clicked",
            ):
                found[doc["envelope"]["type"]] = (data.get("visit_number"), data.get("url"))
        return found

    report = sweep(records, NOW)
    assert details(short) == {"attendee.checked_in": (None, None), "followup.clicked": (None, "")}
    assert details(default) == {"attendee.checked_in": (1, None), "followup.clicked": (None, "https://x.example/f")}
    assert report.stripped == 2
    # Two years on (a moved clock), the defaults' check-in details go too; the clicks a year on.
    assert sweep(records, NOW + timedelta(days=366)).stripped == 1
    assert details(default)["followup.clicked"] == (None, "")
    assert sweep(records, NOW + timedelta(days=2 * 366)).stripped == 1
    assert details(default)["attendee.checked_in"] == (None, None)
    assert sweep(records, NOW + timedelta(days=2 * 366)).read == 0  # nothing read twice
