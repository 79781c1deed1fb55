"""The retention policy and checkin's sweep of old check-in details, on MongoDB.

- The policy is a field of the organization's document (``retention_periods``).
- Events due for the sweep are found by ``(org_id, details_swept_at, ends_at)``
  (index in ``checkin.adapters.mongo``); a swept event gets ``details_swept_at``.
- ``checkin_requests`` (a scan's first answer, ``_id`` "<org_id>:<client key>")
  has no index but ``_id`` on purpose: each index costs every scan a write. An
  old event's records are found by the organization's ``_id`` range (every key
  of the organization starts with "<org_id>:", and ``;`` is the character after
  ``:``) and the ``event_id`` each record names: one range scan of the
  organization's records per sweep that has events to clear, nothing on the
  scan path.
- Registrations of swept events are updated by their ``(event_id, ...)`` index.
"""

from __future__ import annotations

from datetime import datetime

from checkin.adapters.mongo import CHECKIN_REQUESTS, EVENTS, ORGANIZATIONS, REGISTRATIONS
from checkin.adapters.repository_base import Repository
from checkin.domain.retention import DEVICE_FIELDS, WALK_IN_ANSWERS, WALK_IN_SOURCE
from turnout_common.types import Doc


class MongoRetention(Repository):
    collection_name = ORGANIZATIONS

    def policy_of(self, org_id: str) -> Doc | None:
        org = self._coll.find_one({"_id": org_id}, {"retention_periods": 1}, session=self._s) or {}
        periods = org.get("retention_periods")
        return dict(periods) if isinstance(periods, dict) else None

    def set_policy(self, org_id: str, periods: dict[str, int], at: datetime, by: str | None) -> bool:
        result = self._coll.update_one(
            {"_id": org_id},
            {"$set": {"retention_periods": dict(periods), "retention_set_at": at, "retention_set_by": by}},
            session=self._s,
        )
        return result.matched_count == 1

    def policies(self) -> list[tuple[str, Doc | None]]:
        found = self._coll.find({}, {"retention_periods": 1}, session=self._s)
        return [(str(org["_id"]), org.get("retention_periods")) for org in found]

    def events_to_sweep(self, org_id: str, cutoff: datetime, limit: int) -> list[str]:
        found = self._db[EVENTS].find(
            {"org_id": org_id, "details_swept_at": None, "ends_at": {"$lt": cutoff}},
            {"_id": 1},
            session=self._s,
        )
        return [str(event["_id"]) for event in found.sort("ends_at", 1).limit(limit)]

    def forget_checkin_requests(self, org_id: str, event_ids: list[str]) -> int:
        if not event_ids:
            return 0
        result = self._db[CHECKIN_REQUESTS].delete_many(
            {"_id": {"$gte": f"{org_id}:", "$lt": f"{org_id};"}, "event_id": {"$in": event_ids}},
            session=self._s,
        )
        return int(result.deleted_count)

    def strip_checkin_details(self, event_ids: list[str]) -> int:
        if not event_ids:
            return 0
        registrations = self._db[REGISTRATIONS]
        changed = 0
        for part in ("checkin", "checkout"):
            # Only where the part is there: a field cannot be set inside a null.
            result = registrations.update_many(
                {"event_id": {"$in": event_ids}, part: {"$ne": None}},
                {"$set": {f"{part}.{name}": None for name in DEVICE_FIELDS}},
                session=self._s,
            )
            changed += int(result.modified_count)
        walk_ins = registrations.update_many(
            {"event_id": {"$in": event_ids}, "source": WALK_IN_SOURCE},
            {"$set": {name: [] for name in WALK_IN_ANSWERS}},
            session=self._s,
        )
        return changed + int(walk_ins.modified_count)

    def mark_details_swept(self, event_ids: list[str], at: datetime) -> None:
        if event_ids:
            self._db[EVENTS].update_many(
                {"_id": {"$in": event_ids}}, {"$set": {"details_swept_at": at}}, session=self._s
            )
