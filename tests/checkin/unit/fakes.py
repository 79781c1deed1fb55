"""In-memory fakes of checkin's ports (``checkin.service_layer.ports``), for fast
unit tests of the use cases: no database, no broker.

Each repository keeps documents in a dict by ``_id`` and hands out copies (as
a database does); unique indexes are checked where the use cases rely on them
(``AlreadyStored``). ``FakeUnitOfWork`` runs a use case's function, puts the
store back as it was if the function raises (a rolled back transaction), and
keeps the messages of committed runs in ``published`` (the outbox).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from checkin.config import Settings
from checkin.domain import retention as retention_rules
from checkin.domain.audit import pseudonymized
from checkin.service_layer import events
from checkin.service_layer.caches import AccessChecks, KioskSessions, RosterCache
from checkin.service_layer.context import Context
from checkin.service_layer.ports import AlreadyStored, AuditFilter, EventsOverview, RegistrationFilter
from turnout_common.auth import TokenSigner
from turnout_common.clock import utcnow
from turnout_common.contracts import registry
from turnout_common.envelope import Envelope

Doc = dict[str, Any]
T = TypeVar("T")


class _Table:
    """Documents by ``_id``; ``unique`` lists the field tuples no two documents may share."""

    unique: tuple[tuple[str, ...], ...] = ()

    def __init__(self) -> None:
        self.docs: dict[Any, Doc] = {}

    def _check_unique(self, doc: Doc) -> None:
        if doc["_id"] in self.docs:
            raise AlreadyStored(f"duplicate _id {doc['_id']!r}")
        for fields in self.unique:
            key = tuple(doc.get(f) for f in fields)
            if any(tuple(other.get(f) for f in fields) == key for other in self.docs.values()):
                raise AlreadyStored(f"duplicate {fields}: {key!r}")

    def _insert(self, doc: Doc) -> None:
        self._check_unique(doc)
        self.docs[doc["_id"]] = copy.deepcopy(doc)

    def _one(self, match: Callable[[Doc], bool]) -> Doc | None:
        for doc in self.docs.values():
            if match(doc):
                return copy.deepcopy(doc)
        return None

    def _all(self, match: Callable[[Doc], bool]) -> list[Doc]:
        return [copy.deepcopy(doc) for doc in self.docs.values() if match(doc)]

    def _set(self, doc_id: Any, changes: Doc) -> bool:
        doc = self.docs.get(doc_id)
        if doc is None:
            return False
        changed = any(doc.get(key) != value for key, value in changes.items())
        doc.update(copy.deepcopy(changes))
        return changed


class FakeOrganizations(_Table):
    unique = (("slug",),)

    def add(self, org: Doc) -> None:
        self._insert(org)

    def name_of(self, org_id: str) -> str | None:
        org = self.docs.get(org_id)
        return org.get("name") if org else None

    def get(self, org_id: str) -> Doc | None:
        return self._one(lambda d: d["_id"] == org_id)

    def by_slug(self, slug: str) -> Doc | None:
        return self._one(lambda d: d["slug"] == slug)

    def mark_roles_changed(self, org_id: str, at: datetime) -> None:
        self._set(org_id, {"roles_changed_at": at})


class FakeUsers(_Table):
    unique = (("email",),)

    def add(self, user: Doc) -> None:
        self._insert(user)

    def by_email(self, email_norm: str) -> Doc | None:
        return self._one(lambda d: d["email"] == email_norm)

    def get_in_org(self, user_id: str, org_id: str) -> Doc | None:
        return self._one(lambda d: d["_id"] == user_id and d["org_id"] == org_id)

    def of_org(self, org_id: str) -> list[Doc]:
        found = sorted(self._all(lambda d: d["org_id"] == org_id), key=lambda d: d["created_at"])
        return [{k: v for k, v in d.items() if k != "password_hash"} for d in found]

    def set_deactivated(self, user_id: str, at: datetime) -> None:
        self._set(user_id, {"deactivated_at": at})

    def set_role(self, user_id: str, role: str, at: datetime) -> None:
        self._set(user_id, {"role": role, "role_changed_at": at})

    def is_active(self, user_id: str) -> bool:
        user = self.docs.get(user_id)
        return user is not None and not user.get("deactivated_at")


class FakeApiTokens(_Table):
    def add(self, token: Doc) -> None:
        self._insert(token)

    def get_in_org(self, token_id: str, org_id: str) -> Doc | None:
        return self._one(lambda d: d["_id"] == token_id and d["org_id"] == org_id)

    def of_org(self, org_id: str) -> list[Doc]:
        return sorted(self._all(lambda d: d["org_id"] == org_id), key=lambda d: d["created_at"], reverse=True)

    def set_revoked(self, token_id: str, at: datetime) -> None:
        self._set(token_id, {"revoked_at": at})

    def is_valid(self, token_id: str, now: datetime) -> bool:
        doc = self.docs.get(token_id)
        return doc is not None and doc.get("revoked_at") is None and bool(doc["expires_at"] > now)


class FakeEndedSessions(_Table):
    def end(self, session: Doc) -> None:
        if session["_id"] not in self.docs:
            self._insert(session)

    def is_ended(self, session_id: str) -> bool:
        return session_id in self.docs


class FakeEvents(_Table):
    def add(self, event: Doc) -> None:
        self._insert(event)

    def get(self, event_id: str) -> Doc | None:
        return self._one(lambda d: d["_id"] == event_id)

    def get_in_org(self, event_id: str, org_id: str) -> Doc | None:
        return self._one(lambda d: d["_id"] == event_id and d.get("org_id") == org_id)

    get_scoped = get_in_org

    def exists_in_org(self, event_id: str, org_id: str) -> bool:
        return self.get_in_org(event_id, org_id) is not None

    def timezone_of(self, event_id: str) -> str | None:
        event = self.docs.get(event_id)
        return event.get("timezone") if event else None

    def end_if_scheduled(self, event_id: str, org_id: str, at: datetime, ended_by: str) -> Doc | None:
        event = self.docs.get(event_id)
        if event is None or event["org_id"] != org_id or event["status"] != "scheduled":
            return None
        self._set(event_id, {"status": "ended", "ended_at": at, "ended_by": ended_by})
        return self.get(event_id)

    def due_to_end(self, now: datetime, limit: int) -> list[Doc]:
        return self._all(lambda d: d["status"] == "scheduled" and d["ends_at"] <= now)[:limit]

    def replace(self, event: Doc) -> None:
        self.docs[event["_id"]] = copy.deepcopy(event)

    def set_cancelled(self, event_id: str, status: str, at: datetime, reason: str | None) -> None:
        self._set(event_id, {"status": status, "cancelled_at": at, "cancel_reason": reason})

    def add_to_registered_count(self, event_id: str, delta: int) -> None:
        event = self.docs[event_id]
        event["registered_count"] = event.get("registered_count", 0) + delta

    def page_of_org(self, org_id: str, skip: int, limit: int) -> list[Doc]:
        found = sorted(self._all(lambda d: d["org_id"] == org_id), key=lambda d: d["starts_at"], reverse=True)
        return found[skip : skip + limit]

    def overview(self, org_id: str, now: datetime, past_skip: int, past_limit: int) -> EventsOverview:
        mine = sorted(self._all(lambda d: d["org_id"] == org_id), key=lambda d: d["starts_at"])
        happening = [d for d in mine if d["status"] == "scheduled" and d["starts_at"] <= now < d["ends_at"]]
        upcoming = [d for d in mine if d["status"] != "ended" and d["starts_at"] > now]
        past = [
            d
            for d in reversed(mine)
            if d["ends_at"] <= now or d["status"] == "ended" or (d["status"] == "cancelled" and d["starts_at"] <= now)
        ]
        return EventsOverview(happening[:100], upcoming[:200], past[past_skip : past_skip + past_limit], len(past))

    def latest_timezone(self, org_id: str) -> str | None:
        found = self.page_of_org(org_id, 0, 1)
        return found[0]["timezone"] if found else None

    def ensure_public_token(self, event_id: str, token: str) -> str | None:
        event = self.docs.get(event_id)
        if event is None:
            return None
        if event.get("public_token") is None:
            event["public_token"] = token
        return str(event["public_token"])

    def by_public_token(self, token: str) -> Doc | None:
        return self._one(lambda d: d.get("public_token") == token)


class FakePeople(_Table):
    unique = (("org_id", "email_norm"),)

    def upsert(self, org_id: str, email_norm: str, new_person: Doc) -> Doc:
        found = self._one(lambda d: d["org_id"] == org_id and d["email_norm"] == email_norm)
        if found is not None:
            return found
        self._insert(new_person)
        return copy.deepcopy(new_person)

    def get(self, person_id: str) -> Doc | None:
        return self._one(lambda d: d["_id"] == person_id)

    def by_emails(self, org_id: str, email_norms: list[str]) -> dict[str, Doc]:
        return {
            d["email_norm"]: d for d in self._all(lambda d: d["org_id"] == org_id and d["email_norm"] in email_norms)
        }

    def add_many(self, people: list[Doc]) -> None:
        for person in people:
            self._insert(person)

    def count_visit(self, person_id: str, at: datetime) -> None:
        person = self.docs[person_id]
        person["visits"] = person.get("visits", 0) + 1
        person["last_seen_at"] = at
        person["first_seen_at"] = min(person.get("first_seen_at") or at, at)

    def count_visits(self, person_ids: list[str], at: datetime) -> None:
        for person_id in person_ids:
            self.count_visit(person_id, at)

    def uncount_visit(self, person_id: str) -> None:
        person = self.docs[person_id]
        if person.get("visits", 0) > 0:
            person["visits"] -= 1

    def add_hours(self, person_id: str, hours: float) -> None:
        person = self.docs[person_id]
        person["volunteer_hours"] = person.get("volunteer_hours", 0) + hours

    def volunteer_hours(self, person_id: str) -> float | None:
        person = self.docs.get(person_id)
        return None if person is None or "volunteer_hours" not in person else float(person["volunteer_hours"])

    def ids_by_email_prefix(self, org_id: str, prefix: str, limit: int) -> list[str]:
        return [d["_id"] for d in self._all(lambda d: d["org_id"] == org_id and d["email_norm"].startswith(prefix))][
            :limit
        ]

    def emails(self, org_id: str, person_ids: list[str]) -> dict[str, str]:
        return {
            d["_id"]: d.get("email", "") for d in self._all(lambda d: d["_id"] in person_ids and d["org_id"] == org_id)
        }


class FakeRegistrations(_Table):
    unique = (("event_id", "person_id"), ("badge_code",))

    def __init__(self, people: FakePeople) -> None:
        super().__init__()
        self.people = people

    def get(self, registration_id: str) -> Doc | None:
        return self._one(lambda d: d["_id"] == registration_id)

    def get_in_org(self, registration_id: str, org_id: str) -> Doc | None:
        return self._one(lambda d: d["_id"] == registration_id and d["org_id"] == org_id)

    def by_badge_or_id(self, badge_code: str | None, registration_id: str | None) -> Doc | None:
        if badge_code is not None:
            return self._one(lambda d: d["badge_code"] == badge_code)
        return self.get(registration_id or "")

    def with_visits(self, badge_code: str | None, registration_id: str | None) -> tuple[Doc | None, Doc | None]:
        registration = self.by_badge_or_id(badge_code, registration_id)
        if registration is None:
            return None, None
        person = self.people.docs.get(registration["person_id"])
        return registration, ({"_id": person["_id"], "visits": person.get("visits")} if person else None)

    def with_visits_many(self, badge_codes: list[str], registration_ids: list[str]) -> list[tuple[Doc, Doc | None]]:
        found = [self.with_visits(code, None) for code in badge_codes]
        found += [self.with_visits(None, registration_id) for registration_id in registration_ids]
        return [(registration, person) for registration, person in found if registration is not None]

    def of_person(self, event_id: str, person_id: str) -> Doc | None:
        return self._one(lambda d: d["event_id"] == event_id and d["person_id"] == person_id)

    def of_people(self, event_id: str, person_ids: list[str]) -> dict[str, Doc]:
        return {
            d["person_id"]: d for d in self._all(lambda d: d["event_id"] == event_id and d["person_id"] in person_ids)
        }

    def add(self, registration: Doc) -> None:
        self._insert(registration)

    def add_many(self, registrations: list[Doc]) -> None:
        for registration in registrations:
            self._insert(registration)

    def remove(self, registration_id: str) -> None:
        self.docs.pop(registration_id, None)

    def remove_many(self, registration_ids: list[str]) -> None:
        for registration_id in registration_ids:
            self.remove(registration_id)

    def set_fields(self, registration_id: str, changes: Doc) -> bool:
        return self._set(registration_id, changes)

    def set_fields_many(self, changes: list[tuple[str, Doc]]) -> int:
        return sum(self._set(registration_id, fields) for registration_id, fields in changes)

    def set_checkout_if_none(self, registration_id: str, checkout: Doc) -> bool:
        doc = self.docs.get(registration_id)
        if doc is None or doc.get("checkout") is not None:
            return False
        return self._set(registration_id, {"checkout": checkout})

    def clear_checkin(self, registration_id: str) -> None:
        doc = self.docs.get(registration_id)
        if doc is not None and doc.get("checkin") is not None:
            doc["checkin"] = None

    def first_waitlisted(self, event_id: str) -> Doc | None:
        found = self._all(lambda d: d["event_id"] == event_id and d["status"] == "waitlisted")
        return min(found, key=lambda d: d["registered_at"]) if found else None

    def page_of_event(self, org_id: str, event_id: str, skip: int, limit: int) -> list[Doc]:
        found = sorted(self._all(lambda d: d["event_id"] == event_id and d["org_id"] == org_id), key=lambda d: d["_id"])
        return found[skip : skip + limit]

    def of_event(self, event_id: str) -> list[Doc]:
        return self._all(lambda d: d["event_id"] == event_id)

    def attendance_counts(self, event_ids: list[str]) -> dict[str, dict[str, int]]:
        counts = {event_id: {"registered": 0, "waitlisted": 0, "checked_in": 0} for event_id in event_ids}
        for doc in self.docs.values():
            if doc["event_id"] in counts:
                row = counts[doc["event_id"]]
                row["registered"] += doc["status"] == "registered"
                row["waitlisted"] += doc["status"] == "waitlisted"
                row["checked_in"] += doc.get("checkin") is not None
        return counts

    def checkins_today_by_kiosk(self, event_id: str, kiosk_ids: list[str], since: datetime) -> dict[str, int]:
        counts: dict[str, int] = {}
        for doc in self.docs.values():
            checkin = doc.get("checkin") or {}
            if doc["event_id"] == event_id and checkin.get("kiosk_id") in kiosk_ids and checkin["received_at"] >= since:
                counts[checkin["kiosk_id"]] = counts.get(checkin["kiosk_id"], 0) + 1
        return counts

    def roster(self, org_id: str, event_id: str) -> list[Doc]:
        return self._all(
            lambda d: (
                d["event_id"] == event_id and d["org_id"] == org_id and d["status"] in ("registered", "waitlisted")
            )
        )

    def checked_in_flags(self, registration_ids: list[str]) -> dict[str, bool]:
        return {d["_id"]: bool(d.get("checkin")) for d in self._all(lambda d: d["_id"] in registration_ids)}

    def badges_page(
        self, org_id: str, event_id: str, statuses: Sequence[str], skip: int, limit: int
    ) -> tuple[list[Doc], int]:
        found = self._all(lambda d: d["event_id"] == event_id and d["org_id"] == org_id and d["status"] in statuses)
        found.sort(key=lambda d: (d["last_name"], d["first_name"], d["_id"]))
        return found[skip : skip + limit], len(found)

    def search(
        self,
        org_id: str,
        event_id: str,
        wanted: RegistrationFilter,
        name_pattern: str | None,
        person_ids: list[str],
        skip: int,
        limit: int,
    ) -> tuple[list[Doc], int]:
        def match(d: Doc) -> bool:
            if d["event_id"] != event_id or d["org_id"] != org_id:
                return False
            if wanted.status is not None and d["status"] != wanted.status:
                return False
            if wanted.checked_in is not None and (d.get("checkin") is not None) != wanted.checked_in:
                return False
            if wanted.consent is not None and d["consent_email"] != wanted.consent:
                return False
            if wanted.text.strip():
                by_name = name_pattern is not None and re.search(name_pattern, d["name_folded"]) is not None
                return by_name or d["person_id"] in person_ids
            return True

        found = sorted(self._all(match), key=lambda d: (d["name_folded"], d["_id"]))
        return found[skip : skip + limit], len(found)

    def arrivals(self, org_id: str, event_id: str, since: datetime | None, limit: int) -> list[Doc]:
        found = self._all(
            lambda d: (
                d["event_id"] == event_id
                and d["org_id"] == org_id
                and d.get("checkin") is not None
                and (since is None or d["checkin"]["received_at"] > since)
            )
        )
        found.sort(key=lambda d: d["_id"])
        found.sort(key=lambda d: d["checkin"]["received_at"], reverse=True)
        return found[:limit]


class FakeCheckinRequests(_Table):
    def remember(self, request: Doc) -> None:
        self._insert(request)

    def remember_many(self, requests: list[Doc]) -> None:
        for request in requests:
            self._insert(request)

    def get(self, request_id: str) -> Doc | None:
        return self._one(lambda d: d["_id"] == request_id)


class FakeKiosks(_Table):
    def add(self, kiosk: Doc) -> None:
        self._insert(kiosk)

    def get_scoped(self, kiosk_id: str, org_id: str) -> Doc | None:
        return self._one(lambda d: d["_id"] == kiosk_id and d["org_id"] == org_id)

    def name_of(self, kiosk_id: str) -> str | None:
        kiosk = self.docs.get(kiosk_id)
        return str(kiosk["name"]) if kiosk else None

    def names(self, event_id: str, kiosk_ids: list[str]) -> dict[str, str]:
        return {
            d["_id"]: str(d.get("name") or "")
            for d in self._all(lambda d: d["_id"] in kiosk_ids and d["event_id"] == event_id)
        }

    def set_pairing_code(self, kiosk_id: str, org_id: str, code: str, expires_at: datetime) -> bool:
        kiosk = self.docs.get(kiosk_id)
        if kiosk is None or kiosk["org_id"] != org_id or kiosk["status"] == "revoked":
            return False
        self._set(kiosk_id, {"pairing_code": code, "pairing_expires_at": expires_at})
        return True

    def revoke(self, kiosk_id: str, org_id: str, at: datetime) -> bool:
        kiosk = self.docs.get(kiosk_id)
        if kiosk is None or kiosk["org_id"] != org_id:
            return False
        self._set(kiosk_id, {"status": "revoked", "session_id": None, "pairing_code": None, "revoked_at": at})
        return True

    def by_pairing_code(self, code: str) -> Doc | None:
        return self._one(lambda d: d["pairing_code"] == code and d["status"] != "revoked")

    def pair(self, kiosk_id: str, code: str, session_id: str, at: datetime) -> bool:
        kiosk = self.docs.get(kiosk_id)
        if kiosk is None or kiosk["pairing_code"] != code:
            return False
        return self._set(
            kiosk_id,
            {"status": "paired", "pairing_code": None, "session_id": session_id, "paired_at": at, "last_seen_at": at},
        )

    def current_session(self, kiosk_id: str) -> str | None:
        kiosk = self.docs.get(kiosk_id)
        return kiosk["session_id"] if kiosk and kiosk.get("status") == "paired" else None

    def heartbeat(self, kiosk_id: str, at: datetime, queue_length: int) -> None:
        self._set(kiosk_id, {"last_seen_at": at, "queue_length": queue_length})

    def of_event(self, org_id: str, event_id: str) -> list[Doc]:
        found = self._all(lambda d: d["org_id"] == org_id and d["event_id"] == event_id)
        return sorted(found, key=lambda d: d["created_at"])


class FakeAuditLog:
    def __init__(self) -> None:
        self.entries: list[Doc] = []

    def record(self, entry: Doc) -> None:
        self.entries.append(copy.deepcopy(entry))

    def _matching(self, org_id: str, wanted: AuditFilter) -> list[Doc]:
        found = [
            e
            for e in self.entries
            if e["org_id"] == org_id
            and (not wanted.actions or e["action"] in wanted.actions)
            and (wanted.since is None or e["at"] >= wanted.since)
            and (wanted.until is None or e["at"] < wanted.until)
        ]
        return copy.deepcopy(sorted(found, key=lambda e: (e["at"], e["_id"]), reverse=True))

    def page(self, org_id: str, wanted: AuditFilter, skip: int, limit: int) -> tuple[list[Doc], int]:
        found = self._matching(org_id, wanted)
        return found[skip : skip + limit], len(found)

    def matching(self, org_id: str, wanted: AuditFilter, limit: int) -> Iterator[Doc]:
        yield from self._matching(org_id, wanted)[:limit]

    def of_person(self, org_id: str, person_id: str, limit: int) -> list[Doc]:
        found = [e for e in self._matching(org_id, AuditFilter()) if e.get("person_id") == person_id]
        return found[:limit]

    def pseudonymize_person(self, org_id: str, person_id: str, stand_in: str) -> int:
        changed = 0
        for index, entry in enumerate(self.entries):
            if entry["org_id"] == org_id and entry.get("person_id") == person_id:
                self.entries[index] = pseudonymized(entry, person_id, stand_in)
                changed += 1
        return changed


class FakeRetention:
    """The retention policy on the fake organizations, and the sweep over the fake events,
    registrations and check-in requests (held through a function: a snapshot copies no tables)."""

    def __init__(self, store: FakeStore) -> None:
        self._store = lambda: store

    def policy_of(self, org_id: str) -> Doc | None:
        org = self._store().organizations.docs.get(org_id) or {}
        return copy.deepcopy(org.get("retention_periods"))

    def set_policy(self, org_id: str, periods: dict[str, int], at: datetime, by: str | None) -> bool:
        organizations = self._store().organizations
        if org_id not in organizations.docs:
            return False
        organizations._set(org_id, {"retention_periods": dict(periods), "retention_set_at": at, "retention_set_by": by})
        return True

    def policies(self) -> list[tuple[str, Doc | None]]:
        organizations = self._store().organizations.docs
        return [(org_id, copy.deepcopy(org.get("retention_periods"))) for org_id, org in organizations.items()]

    def events_to_sweep(self, org_id: str, cutoff: datetime, limit: int) -> list[str]:
        found = self._store().events._all(
            lambda e: e["org_id"] == org_id and e.get("details_swept_at") is None and e["ends_at"] < cutoff
        )
        return [e["_id"] for e in sorted(found, key=lambda e: e["ends_at"])][:limit]

    def forget_checkin_requests(self, org_id: str, event_ids: list[str]) -> int:
        requests = self._store().checkin_requests.docs
        gone = [k for k, r in requests.items() if k.startswith(f"{org_id}:") and r["event_id"] in event_ids]
        for key in gone:
            del requests[key]
        return len(gone)

    def strip_checkin_details(self, event_ids: list[str]) -> int:
        changed = 0
        for registration in self._store().registrations.docs.values():
            if registration["event_id"] in event_ids:
                after = retention_rules.stripped(registration)
                if after != registration:
                    registration.update(after)
                    changed += 1
        return changed

    def mark_details_swept(self, event_ids: list[str], at: datetime) -> None:
        for event_id in event_ids:
            self._store().events._set(event_id, {"details_swept_at": at})


class FakeImports(_Table):
    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, Doc] = {}

    def add_rows(self, chunks: list[Doc]) -> None:
        for chunk in chunks:
            self.rows[chunk["_id"]] = copy.deepcopy(chunk)

    def add(self, job: Doc) -> None:
        self._insert(job)

    def get(self, job_id: str) -> Doc | None:
        return self._one(lambda d: d["_id"] == job_id)

    def get_scoped(self, job_id: str, org_id: str) -> Doc | None:
        return self._one(lambda d: d["_id"] == job_id and d["org_id"] == org_id)

    def of_event(self, org_id: str, event_id: str, limit: int) -> list[Doc]:
        found = self._all(lambda d: d["event_id"] == event_id and d["org_id"] == org_id)
        return sorted(found, key=lambda d: (d["created_at"], d["_id"]), reverse=True)[:limit]

    def open_jobs(self) -> list[Doc]:
        return self._all(lambda d: d["status"] in ("queued", "running"))

    def lease(self, unchanged: Doc, owner: str, until: datetime) -> bool:
        job = self.docs.get(unchanged["_id"])
        if job is None or any(job.get(k) != v for k, v in unchanged.items()):
            return False
        return self._set(job["_id"], {"status": "running", "lease_owner": owner, "lease_until": until})

    def mark_started(self, job_id: str, at: datetime) -> None:
        if self.docs[job_id].get("started_at") is None:
            self._set(job_id, {"started_at": at})

    def row_chunks(self, chunk_ids: list[str]) -> dict[str, list[Doc]]:
        return {i: copy.deepcopy(self.rows[i]["rows"]) for i in chunk_ids if i in self.rows}

    def _held(self, job_id: str, owner: str, cursor: int | None = None) -> Doc | None:
        job = self.docs.get(job_id)
        if job is None or job.get("lease_owner") != owner or (cursor is not None and job["cursor"] != cursor):
            return None
        return job

    def advance(self, job_id: str, owner: str, cursor: int, changes: Doc, counters: Doc) -> bool:
        job = self._held(job_id, owner, cursor)
        if job is None:
            return False
        job.update(changes)
        for key, delta in counters.items():
            job[key] = job.get(key, 0) + delta
        return True

    def record_failure(self, job_id: str, owner: str, cursor: int, problem: Doc, keep: int) -> bool:
        job = self._held(job_id, owner, cursor)
        if job is None:
            return False
        job["cursor"] = cursor + 1
        for key in ("processed", "failed", "errors_count"):
            job[key] = job.get(key, 0) + 1
        job["errors"] = [*job.get("errors", []), problem][:keep]
        return True

    def finish(self, job_id: str, owner: str, update: Doc) -> bool:
        job = self._held(job_id, owner)
        if job is None:
            return False
        job.update(update)
        return True

    def drop_rows(self, job_id: str) -> None:
        self.rows = {i: chunk for i, chunk in self.rows.items() if chunk["job_id"] != job_id}

    def release(self, job_id: str, owner: str, *, quiet: bool = False) -> None:
        job = self._held(job_id, owner)
        if job is not None:
            job["lease_until"] = None


class FakeStore:
    def __init__(self) -> None:
        self.organizations = FakeOrganizations()
        self.users = FakeUsers()
        self.api_tokens = FakeApiTokens()
        self.ended_sessions = FakeEndedSessions()
        self.events = FakeEvents()
        self.people = FakePeople()
        self.registrations = FakeRegistrations(self.people)
        self.checkin_requests = FakeCheckinRequests()
        self.kiosks = FakeKiosks()
        self.audit = FakeAuditLog()
        self.imports = FakeImports()
        self.retention = FakeRetention(self)

    def snapshot(self) -> dict[str, Any]:
        return {name: copy.deepcopy(vars(repo)) for name, repo in vars(self).items()}

    def restore(self, saved: dict[str, Any]) -> None:
        for name, state in saved.items():
            repo = getattr(self, name)
            for key, value in state.items():
                if key != "people":  # FakeRegistrations keeps a link, not a copy
                    setattr(repo, key, value)


@dataclass
class FakeUnitOfWork:
    """Runs a use case's function against the fake store, as one transaction."""

    store: FakeStore
    published: list[Envelope]
    _pending: list[Envelope] = field(default_factory=list)

    def publish(self, envelope: Envelope) -> None:
        registry().validate(envelope)  # as the real unit of work: a broken contract fails the write
        self._pending.append(envelope)

    def run(self, fn: Callable[[Any], T]) -> T:
        saved = self.store.snapshot()
        self._pending = []
        try:
            result = fn(self)
        except BaseException:
            self.store.restore(saved)
            raise
        self.published.extend(self._pending)
        return result


class FakeEventLookup:
    """The event cache without a cache: every read goes to the fake store."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def get(self, org_id: str, event_id: str) -> Doc | None:
        return self.store.events.get_in_org(event_id, org_id)

    def forget(self, org_id: str, event_id: str) -> None:
        pass


@dataclass
class FakeWorld:
    """A context on fakes, with its store and the messages committed so far."""

    ctx: Context
    store: FakeStore
    published: list[Envelope]

    def types(self) -> list[str]:
        return [envelope.type for envelope in self.published]


def fake_world() -> FakeWorld:
    store = FakeStore()
    published: list[Envelope] = []
    ctx = Context(
        store=store,
        new_uow=lambda: FakeUnitOfWork(store, published),
        signer=TokenSigner("unit-test-secret-key-0123456789"),
        settings=Settings.from_env(),
        events=FakeEventLookup(store),
        kiosk_sessions=KioskSessions(store.kiosks),
        rosters=RosterCache(),
        access=AccessChecks(store.users, store.api_tokens, store.ended_sessions),
    )
    return FakeWorld(ctx, store, published)


def scheduled(world: FakeWorld, org_id: str = "org-1", **changes: Any) -> Doc:
    """An event scheduled through the use case, open at the door now (``changes`` override the defaults)."""
    now = utcnow()
    values: dict[str, Any] = {
        "title": "Pantry shift",
        "kind": "volunteer_shift",
        "starts_at": now - timedelta(minutes=10),
        "ends_at": now + timedelta(hours=2),
        "timezone": "America/Chicago",
    }
    values.update(changes)
    return events.schedule_event(world.ctx, org_id, **values)
