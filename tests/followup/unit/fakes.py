"""In-memory stand-ins for follow-up's ports: the repositories of
``followup.service_layer.repositories`` (one ``FakeStore``), the
transactions (``FakeTransactions``: the published messages land in
``published``; a failing unit of work leaves the store as it was), and a
mail transport that answers from a script (``FakeTransport``).

They keep the documents exactly as the MongoDB adapter does, so the use cases
run unchanged; the queries are answered by plain Python filters.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from followup.config import Settings
from followup.domain.links import LinkTokens
from followup.domain.mail import Accepted, Outcome, OutgoingMail
from followup.domain.nudges import PENDING, NudgeState, display_status
from followup.service_layer.context import Services
from followup.service_layer.ports import Draft, MailSession, Renderer, TransportUnavailable
from followup.service_layer.repositories import DuplicateRecord, Tx
from turnout_common.envelope import Envelope
from turnout_common.types import Doc

T = TypeVar("T")
PENDING_VALUES = {state.value for state in PENDING}
CLAIMED = NudgeState.CLAIMED.value


class _Table:
    """One collection: documents by ``_id``."""

    def __init__(self) -> None:
        self.docs: dict[Any, Doc] = {}

    def all(self) -> list[Doc]:
        return list(self.docs.values())

    def where(self, **equal: Any) -> list[Doc]:
        return [d for d in self.docs.values() if all(d.get(k) == v for k, v in equal.items())]


class FakeEvents:
    def __init__(self, table: _Table) -> None:
        self.t = table

    def get(self, event_id: str) -> Doc | None:
        return self.t.docs.get(event_id)

    def in_org(self, org_id: str, event_id: str) -> Doc | None:
        doc = self.t.docs.get(event_id)
        return doc if doc is not None and doc.get("org_id") == org_id else None

    def timezone_of(self, event_id: str) -> str | None:
        doc = self.t.docs.get(event_id)
        return None if doc is None else doc.get("timezone")

    def by_ids(self, event_ids: Iterable[str]) -> list[Doc]:
        return [self.t.docs[e] for e in sorted(set(event_ids)) if e in self.t.docs]

    def upcoming(self, org_id: str, now: datetime, limit: int) -> list[Doc]:
        found = [
            d
            for d in self.t.docs.values()
            if d.get("org_id") == org_id and d.get("status") == "scheduled" and d["starts_at"] > now
        ]
        return sorted(found, key=lambda d: d["starts_at"])[:limit]


class FakeContacts:
    def __init__(self, table: _Table) -> None:
        self.t = table

    def get(self, person_id: str) -> Doc | None:
        return self.t.docs.get(person_id)

    def in_org(self, org_id: str, person_id: str) -> Doc | None:
        doc = self.t.docs.get(person_id)
        return doc if doc is not None and doc.get("org_id") == org_id else None

    def by_ids(self, person_ids: Iterable[str]) -> list[Doc]:
        return [self.t.docs[p] for p in sorted(set(person_ids)) if p in self.t.docs]

    def page(self, org_id: str, limit: int, offset: int) -> list[Doc]:
        return sorted(self.t.where(org_id=org_id), key=lambda d: d["_id"])[offset : offset + limit]

    def with_email(self, email_norm: str, limit: int) -> list[Doc]:
        return self.t.where(email_norm=email_norm)[:limit]

    def unsubscribe(self, person_id: str, now: datetime, via: str) -> bool:
        doc = self.t.docs.get(person_id)
        if doc is None or doc.get("unsubscribed") is True:
            return False
        doc.update(unsubscribed=True, unsubscribed_at=now, unsubscribed_via=via)
        return True

    def unsubscribe_address(self, org_id: str, email_norm: str, now: datetime, via: str) -> list[str]:
        changed = []
        for doc in self.t.where(org_id=org_id, email_norm=email_norm):
            if doc.get("unsubscribed") is not True:
                doc.update(unsubscribed=True, unsubscribed_at=now, unsubscribed_via=via)
                changed.append(doc["_id"])
        return changed

    def resubscribe_address(self, org_id: str, email_norm: str, via: str) -> list[str]:
        lifted = []
        for doc in self.t.where(org_id=org_id, email_norm=email_norm, unsubscribed_via=via, unsubscribed=True):
            doc["unsubscribed"] = False
            lifted.append(doc["_id"])
        return lifted

    def correct(self, person_id: str, org_id: str, details: Doc, details_at: datetime) -> None:
        doc = self.t.docs.setdefault(person_id, {"_id": person_id, "org_id": org_id, "unsubscribed": False})
        doc.update(details, details_at=details_at)

    def forget(self, person_id: str) -> int:
        return 1 if self.t.docs.pop(person_id, None) is not None else 0


class FakeAttendance:
    def __init__(self, table: _Table) -> None:
        self.t = table

    def of_event(self, event_id: str, *, checked_in: bool = False) -> list[Doc]:
        rows = self.t.where(event_id=event_id)
        return [r for r in rows if r.get("checked_in_at") is not None] if checked_in else rows

    def of_people(self, person_ids: Iterable[str], event_id: str | None = None) -> list[Doc]:
        people = set(person_ids)
        return [
            r
            for r in self.t.docs.values()
            if r["person_id"] in people and (event_id is None or r["event_id"] == event_id)
        ]

    def registered(self, event_id: str, person_id: str) -> bool:
        return bool(self.t.where(event_id=event_id, person_id=person_id))

    def history(self) -> list[Doc]:
        by_person: dict[str, Doc] = {}
        rows = sorted(
            (r for r in self.t.docs.values() if r.get("checked_in_at") is not None), key=lambda r: r["checked_in_at"]
        )
        for row in rows:
            entry = by_person.setdefault(row["person_id"], {"_id": row["person_id"], "attended": 0})
            entry.update(org_id=row["org_id"], last=row["checked_in_at"], last_event=row["event_id"])
            entry["attended"] += 1
            entry.setdefault("times", []).append(row["checked_in_at"])
        return list(by_person.values())

    def of_person(self, org_id: str, person_id: str) -> list[Doc]:
        return self.t.where(org_id=org_id, person_id=person_id)

    def undo_checkin(self, event_id: str, person_id: str, undone_at: datetime) -> bool:
        for doc in self.t.where(event_id=event_id, person_id=person_id):
            if doc.get("checked_in_at") is not None and doc["checked_in_at"] <= undone_at:
                doc.update(checked_in_at=None, checked_out_at=None, hours=None, checkin_undone_at=undone_at)
                return True
        return False

    def pseudonymise(self, org_id: str, person_id: str, stand_in: str, drop: Sequence[str]) -> int:
        rows = self.t.where(org_id=org_id, person_id=person_id)
        for doc in rows:
            doc["person_id"] = stand_in
            for name in drop:
                doc.pop(name, None)
        return len(rows)


class FakeIntroductions:
    def __init__(self, table: _Table) -> None:
        self.t = table

    def get(self, introduction_id: str) -> Doc | None:
        return self.t.docs.get(introduction_id)

    def by_ids(self, introduction_ids: Iterable[str]) -> list[Doc]:
        return [self.t.docs[i] for i in sorted(set(introduction_ids)) if i in self.t.docs]

    def of_people_at(self, event_id: str, person_ids: Iterable[str]) -> list[Doc]:
        people = set(person_ids)
        return [d for d in self.t.where(event_id=event_id) if people & set(d["people"])]

    def of_people_in_org(self, org_id: str, person_ids: Iterable[str]) -> list[Doc]:
        people = set(person_ids)
        return [d for d in self.t.where(org_id=org_id) if people & set(d["people"])]

    def first_of_person_at(self, event_id: str, person_id: str) -> Doc | None:
        return next((d for d in self.t.where(event_id=event_id) if person_id in d["people"]), None)

    def add(self, docs: Sequence[Doc]) -> None:
        for doc in docs:
            clash = doc["_id"] in self.t.docs or any(
                d["org_id"] == doc["org_id"] and d["pair_key"] == doc["pair_key"] for d in self.t.docs.values()
            )
            if clash:
                raise DuplicateRecord(f"introduction {doc['_id']}")
            self.t.docs[doc["_id"]] = copy.deepcopy(doc)

    def accept(self, introduction_id: str, person_id: str, changes: Doc) -> bool:
        doc = self.t.docs.get(introduction_id)
        if doc is None or person_id in doc.get("accepted_by", []):
            return False
        doc.setdefault("accepted_by", []).append(person_id)
        for key, value in changes.items():
            if "." in key:
                head, _, tail = key.partition(".")
                doc.setdefault(head, {})[tail] = value
            else:
                doc[key] = value
        return True

    def rewrite(self, introduction_id: str, fields: Doc) -> None:
        self.t.docs[introduction_id].update(copy.deepcopy(fields))


class FakeSettings:
    def __init__(self, table: _Table) -> None:
        self.t = table

    def of(self, org_id: str, event_id: str | None) -> dict[str, Doc]:
        ids = [f"org:{org_id}", f"event:{event_id or '-'}"]
        return {i: self.t.docs[i] for i in ids if i in self.t.docs}

    def update(self, settings_id: str, fields: Doc) -> None:
        doc = self.t.docs.setdefault(settings_id, {"_id": settings_id})
        for key, value in fields.items():
            target = doc
            *heads, last = key.split(".")
            for head in heads:
                target = target.setdefault(head, {})
            target[last] = value


class FakeSuppressions:
    def __init__(self, table: _Table) -> None:
        self.t = table

    def existing(self, suppression_ids: Iterable[str]) -> set[str]:
        return {i for i in suppression_ids if i in self.t.docs}

    def get(self, suppression_id: str) -> Doc | None:
        return self.t.docs.get(suppression_id)

    def exists(self, suppression_id: str) -> bool:
        return suppression_id in self.t.docs

    def add(self, suppression_id: str, doc: Doc) -> None:
        self.t.docs.setdefault(suppression_id, {"_id": suppression_id, **doc})

    def remove(self, suppression_id: str) -> None:
        self.t.docs.pop(suppression_id, None)

    def page(self, org_id: str, limit: int, offset: int) -> list[Doc]:
        found = sorted(self.t.where(org_id=org_id), key=lambda d: d["created_at"], reverse=True)
        return found[offset : offset + limit]

    def of_person(self, org_id: str, email_keys: Iterable[str], person_id: str) -> list[Doc]:
        ids = {f"{org_id}:{key}" for key in email_keys}
        return [d for d in self.t.docs.values() if d["_id"] in ids or d.get("person_id") == person_id]

    def replace(self, old_id: str, new_id: str, doc: Doc) -> None:
        self.t.docs.pop(old_id, None)
        self.t.docs.setdefault(new_id, {"_id": new_id, **doc})


class FakeNudges:
    def __init__(self, table: _Table) -> None:
        self.t = table

    def _pending(self, followup: str) -> Doc | None:
        doc = self.t.docs.get(followup)
        return doc if doc is not None and doc["state"] in PENDING_VALUES else None

    def get(self, followup: str) -> Doc | None:
        return self.t.docs.get(followup)

    def in_org(self, org_id: str, followup: str) -> Doc | None:
        doc = self.t.docs.get(followup)
        return doc if doc is not None and doc.get("org_id") == org_id else None

    def of_batch(self, batch_id: str) -> list[Doc]:
        return [copy.deepcopy(d) for d in self.t.where(batch_id=batch_id)]

    def pending_send_times(self, batch_id: str) -> list[datetime]:
        return [d["send_at"] for d in self.t.where(batch_id=batch_id) if d["state"] in PENDING_VALUES]

    def existing_keys(self, keys: Sequence[str]) -> set[str]:
        wanted = set(keys)
        return {d["key"] for d in self.t.docs.values() if d["key"] in wanted}

    def add(self, docs: Sequence[Doc]) -> None:
        for doc in docs:
            if doc["_id"] in self.t.docs or self.existing_keys([doc["key"]]):
                raise DuplicateRecord(f"nudge {doc['key']}")
            self.t.docs[doc["_id"]] = copy.deepcopy(doc)

    def of_people_at(self, event_id: str, person_ids: Iterable[str]) -> list[Doc]:
        people = set(person_ids)
        return [d for d in self.t.where(event_id=event_id) if d["person_id"] in people]

    def skip_pending(self, followups: Sequence[str], reason: str, now: datetime) -> None:
        for followup in followups:
            doc = self._pending(followup)
            if doc is not None:
                doc.update(state=NudgeState.SKIPPED.value, skip_reason=reason, skipped_at=now)

    def decide_pending(
        self, skips: Sequence[tuple[str, str]], waits: Sequence[tuple[str, datetime, str]], now: datetime
    ) -> None:
        for followup, reason in skips:
            self.skip_pending([followup], reason, now)
        for followup, until, reason in waits:
            doc = self._pending(followup)
            if doc is not None:
                doc.update(send_at=until, waiting_for=reason)

    def claim(self, followups: Sequence[str], token: str, now: datetime) -> int:
        claimed = 0
        for followup in followups:
            doc = self._pending(followup)
            if doc is not None:
                doc.update(state=CLAIMED, claim=token, claimed_at=now, attempts=doc["attempts"] + 1)
                claimed += 1
        return claimed

    def claimed_by(self, followups: Sequence[str], token: str) -> set[str]:
        return {f for f in followups if (d := self.t.docs.get(f)) and d["state"] == CLAIMED and d.get("claim") == token}

    def left_claimed(self, batch_id: str, token: str) -> list[Doc]:
        return [copy.deepcopy(d) for d in self.t.where(batch_id=batch_id, state=CLAIMED, claim=token)]

    def unclaim(self, followups: Sequence[str], token: str) -> None:
        for followup in self.claimed_by(followups, token):
            doc = self.t.docs[followup]
            doc.update(state=NudgeState.SCHEDULED.value, claim=None, attempts=doc["attempts"] - 1)

    def settled_candidates(self, followups: Sequence[str], attempt: int, states: Sequence[str]) -> list[str]:
        return [f for f in followups if (d := self.t.docs.get(f)) and d["attempts"] == attempt and d["state"] in states]

    def mark_sent(
        self, followups: Sequence[str], attempt: int, states: Sequence[str], at: datetime, transport: str
    ) -> None:
        for followup in self.settled_candidates(followups, attempt, states):
            self.t.docs[followup].update(state=NudgeState.SENT.value, sent_at=at, transport=transport)

    def record_outcome(self, followup: str, fields: Doc, attempt: int | None) -> bool:
        doc = self.t.docs.get(followup)
        if doc is None:
            return False
        if attempt is None:
            if doc["state"] not in PENDING_VALUES:
                return False
        elif doc["attempts"] != attempt or doc["state"] != CLAIMED:
            return False
        doc.update(fields)
        return True

    def resolve(self, followup: str, state: str, changes: Doc) -> bool:
        doc = self.t.docs.get(followup)
        if doc is None or doc["state"] != state:
            return False
        doc.update(changes)
        return True

    def first_open(self, followup: str, now: datetime, machine: str | None = None) -> bool:
        at, count = ("machine_opened_at", "machine_open_count") if machine else ("opened_at", "open_count")
        doc = self.t.docs.get(followup)
        if doc is None or doc.get(at) is not None:
            return False
        doc.update({at: now, count: doc.get(count, 0) + 1})
        if machine:
            doc["machine_open_reason"] = machine
        return True

    def count_open(self, followup: str, machine: bool = False) -> None:
        count = "machine_open_count" if machine else "open_count"
        doc = self.t.docs[followup]
        doc[count] = doc.get(count, 0) + 1

    def first_click(self, followup: str, url: str, now: datetime, machine: str | None = None) -> bool:
        prefix = "machine_" if machine else ""
        doc = self.t.docs.get(followup)
        if doc is None or url in doc.get(f"{prefix}clicked_urls", []) or doc.get("tracking_stripped_at"):
            return False
        doc.setdefault(f"{prefix}clicked_urls", []).append(url)
        doc[f"{prefix}clicked_at"] = min(now, doc.get(f"{prefix}clicked_at") or now)
        doc[f"{prefix}click_count"] = doc.get(f"{prefix}click_count", 0) + 1
        if machine:
            doc["machine_click_reason"] = machine
        return True

    def count_click(self, followup: str, machine: bool = False) -> None:
        count = "machine_click_count" if machine else "click_count"
        doc = self.t.docs[followup]
        doc[count] = doc.get(count, 0) + 1

    def note_fetch(self, followup: str, url: str, now: datetime) -> None:
        doc = self.t.docs.get(followup)
        if doc is not None and doc.get("tracking_stripped_at") is None:
            doc.update(last_click_url=url, last_click_at=now)

    def record_feedback(self, followup: str, rating: int, comment: str | None, now: datetime) -> bool:
        doc = self.t.docs.get(followup)
        if doc is None or (comment is None and doc.get("feedback_rating") == rating):
            return False
        doc.update(feedback_rating=rating, feedback_comment=comment, feedback_at=now)
        return True

    def record_bounce(self, followup: str, field: str, now: datetime, bounce_type: str, reason: str) -> bool:
        doc = self.t.docs.get(followup)
        if doc is None or doc.get(field) is not None:
            return False
        doc.update({field: now, "bounce_type": bounce_type, "bounce_reason": reason})
        return True

    def listing(
        self, org_id: str, event_id: str, *, status: str | None, kind: str | None, limit: int, offset: int
    ) -> list[Doc]:
        found = [
            d
            for d in self.t.where(org_id=org_id, event_id=event_id)
            if (kind is None or d["kind"] == kind) and (status is None or _status(d) == status)
        ]
        return sorted(found, key=lambda d: (d["created_at"], d["_id"]))[offset : offset + limit]

    def status_fields(self, org_id: str, event_id: str) -> list[Doc]:
        return self.t.where(org_id=org_id, event_id=event_id)

    def of_person(self, person_id: str, event_ids: Iterable[str | None]) -> list[Doc]:
        events = set(event_ids)
        return [copy.deepcopy(d) for d in self.t.where(person_id=person_id) if d.get("event_id") in events]

    def win_backs(self, org_id: str) -> list[Doc]:
        found = self.t.where(event_id=None, org_id=org_id, kind="win_back")
        return [copy.deepcopy(d) for d in sorted(found, key=lambda d: (d["created_at"], d["_id"]))]

    def people_of(self, followups: Sequence[str]) -> dict[str, str]:
        return {f: self.t.docs[f]["person_id"] for f in followups if f in self.t.docs}

    def skipped_for(self, followups: Sequence[str], reason: str) -> set[str]:
        return {f for f in followups if (d := self.t.docs.get(f)) and d.get("skip_reason") == reason}

    def rewrite(self, followup: str, changes: Doc, drop: Sequence[str]) -> None:
        doc = self.t.docs[followup]
        doc.update(changes)
        for name in drop:
            doc.pop(name, None)

    def strip_tracking(self, followups: Sequence[str], before: datetime, now: datetime) -> int:
        changed = 0
        for followup in followups:
            doc = self.t.docs.get(followup)
            if doc and doc.get("sent_at") and doc["sent_at"] < before and doc.get("tracking_stripped_at") is None:
                for name in ("clicked_urls", "machine_clicked_urls", "last_click_url"):
                    doc.pop(name, None)
                doc["tracking_stripped_at"] = now
                changed += 1
        return changed


def _status(doc: Doc) -> str:
    return display_status(
        doc["state"],
        opened=doc.get("opened_at") is not None,
        clicked=doc.get("clicked_at") is not None,
        bounced=doc.get("bounced_at") is not None,
        feedback=doc.get("feedback_at") is not None,
    )


class FakeSendBatches:
    def __init__(self, table: _Table) -> None:
        self.t = table

    def add(self, doc: Doc) -> None:
        if doc["_id"] in self.t.docs:
            raise DuplicateRecord(f"batch {doc['_id']}")
        self.t.docs[doc["_id"]] = copy.deepcopy(doc)

    def due(self, now: datetime, limit: int) -> list[str]:
        found = [d for d in self.t.where(state="ready") if d["due_at"] <= now]
        return [d["_id"] for d in sorted(found, key=lambda d: d["due_at"])[:limit]]

    def claim(self, batch_id: str, token: str, now: datetime, lease_until: datetime) -> bool:
        doc = self.t.docs.get(batch_id)
        if doc is None or doc["state"] != "ready":
            return False
        doc.update(state="claimed", lease_owner=token, lease_until=lease_until, claimed_at=now)
        return True

    def renew(self, batch_id: str, token: str, lease_until: datetime) -> bool:
        doc = self.t.docs.get(batch_id)
        if doc is None or doc["state"] != "claimed" or doc.get("lease_owner") != token:
            return False
        doc["lease_until"] = lease_until
        return True

    def release(self, batch_id: str, token: str, changes: Doc) -> None:
        doc = self.t.docs.get(batch_id)
        if doc is not None and doc.get("lease_owner") == token:
            doc.update({**changes, "lease_owner": None, "lease_until": None})

    def expired(self, now: datetime, limit: int) -> list[Doc]:
        return [d for d in self.t.where(state="claimed") if d["lease_until"] < now][:limit]

    def take_over(self, batch_id: str, owner: str, token: str, lease_until: datetime) -> bool:
        doc = self.t.docs.get(batch_id)
        if doc is None or doc["state"] != "claimed" or doc.get("lease_owner") != owner:
            return False
        doc.update(lease_owner=token, lease_until=lease_until)
        return True

    def reopen(self, batch_id: str, now: datetime) -> None:
        doc = self.t.docs.get(batch_id)
        if doc is not None and doc["state"] == "done":
            doc.update(state="ready", due_at=now)
            for stage in ("bodies", "journal", "tracking"):
                doc.pop(f"{stage}_swept_at", None)

    def count_due(self, now: datetime) -> int:
        return len(self.due(now, 10**9))

    def next_due_at(self) -> datetime | None:
        return min((d["due_at"] for d in self.t.where(state="ready")), default=None)

    def org_ids(self) -> list[str]:
        return sorted({d["org_id"] for d in self.t.docs.values() if d.get("org_id")})

    def to_sweep(self, org_id: str, stage: str, before: datetime, limit: int) -> list[Doc]:
        found = [
            d
            for d in self.t.where(org_id=org_id, state="done")
            if d["due_at"] < before and d.get(f"{stage}_swept_at") is None
        ]
        return found[:limit]

    def swept(self, batch_id: str, stage: str, now: datetime) -> None:
        self.t.docs[batch_id][f"{stage}_swept_at"] = now


class FakeJournal:
    def __init__(self, table: _Table) -> None:
        self.t = table

    def append(self, entries: Sequence[Doc]) -> int:
        for inserted, entry in enumerate(entries):
            if entry["_id"] in self.t.docs:
                return inserted
            self.t.docs[entry["_id"]] = dict(entry)
        return len(entries)

    def by_ids(self, entry_ids: Sequence[str]) -> dict[str, Doc]:
        return {i: self.t.docs[i] for i in entry_ids if i in self.t.docs}

    def get(self, entry_id: str) -> Doc | None:
        return self.t.docs.get(entry_id)

    def fence(self, entry: Doc) -> bool:
        if entry["_id"] in self.t.docs:
            return False
        self.t.docs[entry["_id"]] = dict(entry)
        return True

    def delete(self, entry_ids: Sequence[str], before: datetime | None = None) -> tuple[int, int]:
        deleted = kept = 0
        for entry_id in entry_ids:
            doc = self.t.docs.get(entry_id)
            if doc is None:
                continue
            if before is None or doc["at"] < before:
                del self.t.docs[entry_id]
                deleted += 1
            else:
                kept += 1
        return deleted, kept


class FakeRendered:
    def __init__(self, table: _Table) -> None:
        self.t = table

    def store(self, docs: Sequence[Doc]) -> None:
        for doc in docs:
            self.t.docs[doc["_id"]] = dict(doc)

    def raw(self, rendered_id: str) -> bytes | None:
        doc = self.t.docs.get(rendered_id)
        return None if doc is None or doc.get("raw") is None else bytes(doc["raw"])

    def of_ids(self, rendered_ids: Sequence[str]) -> list[Doc]:
        return [dict(self.t.docs[i]) for i in rendered_ids if i in self.t.docs]

    def remove(self, rendered_ids: Sequence[str]) -> int:
        return sum(1 for i in rendered_ids if self.t.docs.pop(i, None) is not None)

    def strip(
        self, rendered_ids: Sequence[str], now: datetime, before: datetime | None = None, *, subject: bool = False
    ) -> tuple[int, int]:
        stripped = kept = 0
        for rendered_id in rendered_ids:
            doc = self.t.docs.get(rendered_id)
            if doc is None or doc.get("body_removed_at") is not None:
                continue
            if before is None or doc["rendered_at"] < before:
                doc.pop("raw", None)
                if subject:
                    doc.pop("subject", None)
                doc["body_removed_at"] = now
                stripped += 1
            else:
                kept += 1
        return stripped, kept


class FakeInDoubt:
    def __init__(self, table: _Table) -> None:
        self.t = table

    def add(self, followup: str, doc: Doc) -> None:
        self.t.docs.setdefault(followup, {"_id": followup, **doc})

    def remove(self, followups: Sequence[str]) -> None:
        for followup in followups:
            self.t.docs.pop(followup, None)

    def count(self) -> int:
        return len(self.t.docs)

    def of_ids(self, followups: Sequence[str]) -> list[Doc]:
        return [self.t.docs[f] for f in followups if f in self.t.docs]


class FakePlans:
    def __init__(self, table: _Table) -> None:
        self.t = table

    def get(self, event_id: str) -> Doc | None:
        return self.t.docs.get(event_id)

    def pending(self, limit: int) -> list[Doc]:
        return [copy.deepcopy(d) for d in self.t.where(state="pending")][:limit]

    def dirty(self, limit: int) -> list[Doc]:
        return [copy.deepcopy(d) for d in self.t.where(has_dirty=True)][:limit]

    def due_for_introductions(self, now: datetime, limit: int) -> list[Doc]:
        found = self.t.where(state="awaiting_introductions")
        return [copy.deepcopy(d) for d in found if d["due_at"] <= now][:limit]

    def next_introductions_at(self) -> datetime | None:
        return min((d["due_at"] for d in self.t.where(state="awaiting_introductions")), default=None)

    def claim(self, plan_id: str, owner: str, now: datetime, lease_until: datetime) -> bool:
        doc = self.t.docs.get(plan_id)
        if doc is None or (doc.get("lease_until") is not None and doc["lease_until"] >= now):
            return False
        doc.update(lease_owner=owner, lease_until=lease_until)
        return True

    def release(self, plan_id: str, owner: str, changes: Doc) -> None:
        doc = self.t.docs.get(plan_id)
        if doc is not None and doc.get("lease_owner") == owner:
            doc.update({**changes, "lease_owner": None, "lease_until": None})

    def clean(self, plan_id: str, people: Sequence[str]) -> None:
        doc = self.t.docs[plan_id]
        doc["dirty"] = [p for p in doc.get("dirty", []) if p not in people]
        if not doc["dirty"]:
            doc["has_dirty"] = False

    def forget_dirty(self, person_id: str) -> int:
        named = [d["_id"] for d in self.t.where(has_dirty=True) if person_id in d.get("dirty", [])]
        for plan_id in named:
            self.clean(plan_id, [person_id])
        return len(named)


class FakeFigures:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, increments: dict[str, int]) -> None:
        for name, value in increments.items():
            self.counts[name] = self.counts.get(name, 0) + value

    def totals(self) -> Doc:
        return dict(self.counts)


class FakeScans:
    def __init__(self) -> None:
        self.due: dict[str, datetime] = {}

    def claim(self, scan: str, now: datetime, next_at: datetime) -> bool:
        if self.due.setdefault(scan, now) > now:
            return False
        self.due[scan] = next_at
        return True

    def next_at(self, scan: str) -> datetime | None:
        return self.due.get(scan)


class FakeCheckinFacts:
    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.revoked: list[Envelope] = []

    def planned(self, event_ids: Iterable[str]) -> set[str]:
        return {e for e in event_ids if e in self.store.tables["plans"].docs}

    def apply(
        self,
        events: Sequence[tuple[str, Doc]],
        contacts: Sequence[tuple[str, Doc, Doc]],
        attendance: Sequence[tuple[str, str, Doc]],
        plans: Sequence[tuple[str, Doc]],
        dirty: dict[str, set[str]],
    ) -> None:
        tables = self.store.tables
        for event_id, fields in events:
            tables["events"].docs.setdefault(event_id, {"_id": event_id}).update(fields)
        for person_id, fields, on_insert in contacts:
            doc = tables["contacts"].docs.get(person_id)
            if doc is None:
                doc = tables["contacts"].docs[person_id] = {"_id": person_id, **on_insert}
            doc.update(fields)
        for event_id, person_id, update in attendance:
            key = f"{event_id}|{person_id}"
            doc = tables["attendance"].docs.get(key)
            if doc is None:
                doc = tables["attendance"].docs[key] = {
                    "_id": key,
                    "event_id": event_id,
                    "person_id": person_id,
                    **update.get("$setOnInsert", {}),
                }
            doc.update(update.get("$set", {}))
        for event_id, on_insert in plans:
            tables["plans"].docs.setdefault(event_id, {"_id": event_id, **on_insert})
        for event_id, people in dirty.items():
            plan = tables["plans"].docs[event_id]
            plan["dirty"] = sorted(set(plan.get("dirty", [])) | people)
            plan["has_dirty"] = True

    def record_revocations(self, messages: Sequence[Envelope]) -> int:
        found = [m for m in messages if m.type == "access.revoked"]
        self.revoked.extend(found)
        return len(found)


class FakeErasedPeople:
    def __init__(self, table: _Table) -> None:
        self.t = table

    def among(self, stand_ins: Iterable[str]) -> set[str]:
        return {s for s in stand_ins if s in self.t.docs}

    def by_address(self, digests: Iterable[str]) -> dict[str, datetime | None]:
        wanted = set(digests)
        found: dict[str, datetime | None] = {}
        for doc in self.t.docs.values():
            for digest in doc.get("email_digests") or []:
                if digest in wanted:
                    found[digest] = doc.get("requested_at")
        return found

    def remember(self, doc: Doc) -> bool:
        if doc["_id"] in self.t.docs:
            return False
        self.t.docs[doc["_id"]] = dict(doc)
        return True


class FakeConsentHistory:
    def __init__(self, table: _Table) -> None:
        self.t = table

    def add(self, entries: Sequence[Doc]) -> None:
        for entry in entries:
            self.t.docs.setdefault(entry["_id"], dict(entry))

    def of_person(self, org_id: str, person_id: str) -> list[Doc]:
        return sorted(self.t.where(org_id=org_id, person_id=person_id), key=lambda d: (d["at"], d["_id"]))

    def forget(self, org_id: str, person_id: str) -> int:
        gone = [d["_id"] for d in self.t.where(org_id=org_id, person_id=person_id)]
        for entry_id in gone:
            del self.t.docs[entry_id]
        return len(gone)


class FakeRetentionPolicies:
    def __init__(self, table: _Table) -> None:
        self.t = table

    def get(self, org_id: str) -> Doc | None:
        return self.t.docs.get(org_id)

    def all(self) -> list[Doc]:
        return self.t.all()

    def put(self, org_id: str, doc: Doc) -> None:
        self.t.docs[org_id] = {**doc, "_id": org_id}


class FakeLeftovers:
    """The plumbing's copies (dead letters, outbox) live in MongoDB only: none here."""

    def forget_dead_letters(self, needles: Sequence[bytes]) -> int:
        return 0

    def mask_outbox(self, needles: Sequence[bytes], mask: Callable[[Doc], Doc | None]) -> int:
        return 0


TABLES = (
    "events",
    "contacts",
    "attendance",
    "introductions",
    "settings",
    "suppressions",
    "nudges",
    "batches",
    "journal",
    "rendered",
    "in_doubt",
    "plans",
    "erased",
    "consent",
    "retention",
)


class FakeStore:
    """Every repository, in memory."""

    def __init__(self) -> None:
        self.tables = {name: _Table() for name in TABLES}
        self._build()

    def _build(self) -> None:
        t = self.tables
        self.events = FakeEvents(t["events"])
        self.contacts = FakeContacts(t["contacts"])
        self.attendance = FakeAttendance(t["attendance"])
        self.introductions = FakeIntroductions(t["introductions"])
        self.settings = FakeSettings(t["settings"])
        self.suppressions = FakeSuppressions(t["suppressions"])
        self.nudges = FakeNudges(t["nudges"])
        self.batches = FakeSendBatches(t["batches"])
        self.journal = FakeJournal(t["journal"])
        self.rendered = FakeRendered(t["rendered"])
        self.in_doubt = FakeInDoubt(t["in_doubt"])
        self.plans = FakePlans(t["plans"])
        if not hasattr(self, "figures"):
            self.figures = FakeFigures()
            self.scans = FakeScans()
        self.checkin_facts = FakeCheckinFacts(self)
        self.erased = FakeErasedPeople(t["erased"])
        self.consent = FakeConsentHistory(t["consent"])
        self.retention = FakeRetentionPolicies(t["retention"])
        self.leftovers = FakeLeftovers()

    def snapshot(self) -> dict[str, dict[Any, Doc]]:
        return {name: copy.deepcopy(table.docs) for name, table in self.tables.items()}

    def restore(self, saved: dict[str, dict[Any, Doc]]) -> None:
        for name, docs in saved.items():
            self.tables[name].docs = docs
        self._build()


@dataclass
class FakeTx:
    store: FakeStore
    messages: list[Envelope] = field(default_factory=list)

    def publish(self, envelope: Envelope) -> None:
        self.messages.append(envelope)


class FakeTransactions:
    """All or nothing, like the real unit of work: a failing ``work`` leaves the store as it was."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.published: list[Envelope] = []

    def run(self, work: Callable[[Tx], T]) -> T:
        saved = self.store.snapshot()
        tx = FakeTx(self.store)
        try:
            result = work(tx)
        except BaseException:
            self.store.restore(saved)
            raise
        self.published.extend(tx.messages)
        return result

    def types(self) -> list[str]:
        return [m.type for m in self.published]


# -- the mail side ----------------------------------------------------------------------


class FakeSession:
    def __init__(self, transport: FakeTransport) -> None:
        self.transport = transport
        self.usable = True

    def send(self, mail: OutgoingMail) -> Outcome:
        outcome = self.transport.answer(mail)
        if isinstance(outcome, Accepted):
            self.transport.delivered.append(mail)
        return outcome

    def close(self) -> None:
        self.usable = False


class FakeTransport:
    """Accepts everything unless ``answer`` says otherwise; ``down`` refuses to connect."""

    name = "smtp"

    def __init__(self) -> None:
        self.delivered: list[OutgoingMail] = []
        self.attempts: list[str] = []
        self.down = False
        self.script: Callable[[OutgoingMail], Outcome | None] = lambda mail: None

    def answer(self, mail: OutgoingMail) -> Outcome:
        self.attempts.append(mail.to_address)
        return self.script(mail) or Accepted("250 2.0.0 OK queued")

    def open(self) -> MailSession:
        if self.down:
            raise TransportUnavailable("connection refused")
        return FakeSession(self)


class FakeRenderer:
    """Renders a draft as a tiny text email (the real templates are tested elsewhere)."""

    def render(self, draft: Draft) -> OutgoingMail:
        subject = f"{draft.kind} for {draft.to_address}"
        raw = f"Subject: {subject}\r\nTo: {draft.to_header}\r\nMessage-ID: {draft.message_id}\r\n\r\nhello\r\n"
        return OutgoingMail(
            followup_id=draft.followup_id,
            message_id=draft.message_id,
            envelope_from=draft.envelope_from,
            from_header=draft.from_header,
            to_address=draft.to_address,
            to_header=draft.to_header,
            subject=subject,
            text="hello",
            html="<p>hello</p>",
            headers=dict(draft.headers),
            raw=raw.encode(),
            reply_to=draft.reply_to,
        )


def fake_services(
    settings: Settings,
    *,
    clock: Callable[[], datetime],
    transport: FakeTransport | None = None,
    renderer: Renderer | None = None,
) -> tuple[Services, FakeStore, FakeTransactions]:
    store = FakeStore()
    transactions = FakeTransactions(store)
    svc = Services(
        store=store,
        transactions=transactions,
        settings=settings,
        links=LinkTokens("unit-secret"),
        renderer=renderer or FakeRenderer(),
        transport=transport,
        clock=clock,
    )
    return svc, store, transactions
