"""What follow-up does with checkin's messages: keep its own contact list and
who attended what (the facts its nudges are chosen from)."""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import UpdateOne

from followup.adapters.mongo import ATTENDANCE, CONTACTS
from followup.domain.contacts import consent_update, contact_from_registration
from turnout_common.envelope import Envelope
from turnout_common.mongo import UnitOfWork

HANDLED_TYPES = ("attendee.registered", "registration.cancelled", "attendee.checked_in", "attendee.checked_out")


def apply_checkin_messages(uow: UnitOfWork, messages: Sequence[Envelope]) -> None:
    contacts: list[UpdateOne] = []
    attendance: list[UpdateOne] = []
    for message in messages:
        data = message.data
        key = {"event_id": data["event_id"], "person_id": data["person_id"]}
        if message.type == "attendee.registered":
            contacts.append(
                UpdateOne(
                    {"_id": data["person_id"]},
                    {
                        "$set": {**contact_from_registration(data), **consent_update(data)},
                        "$setOnInsert": {"unsubscribed": False},
                    },
                    upsert=True,
                )
            )
            attendance.append(
                UpdateOne(
                    key,
                    {
                        "$set": {"org_id": data["org_id"], "registration_status": data["status"]},
                        "$setOnInsert": {"checked_in_at": None},
                    },
                    upsert=True,
                )
            )
        elif message.type == "registration.cancelled":
            attendance.append(UpdateOne(key, {"$set": {"registration_status": "cancelled"}}, upsert=True))
        elif message.type == "attendee.checked_in":
            attendance.append(
                UpdateOne(
                    key,
                    {
                        "$set": {
                            "org_id": data["org_id"],
                            "checked_in_at": data["received_at"],
                            "first_time_ever": data["first_time_ever"],
                        }
                    },
                    upsert=True,
                )
            )
        elif message.type == "attendee.checked_out":
            attendance.append(UpdateOne(key, {"$set": {"hours": data["hours"]}}, upsert=True))
    if contacts:
        uow.db[CONTACTS].bulk_write(contacts, ordered=True, session=uow.session)
    if attendance:
        uow.db[ATTENDANCE].bulk_write(attendance, ordered=True, session=uow.session)
