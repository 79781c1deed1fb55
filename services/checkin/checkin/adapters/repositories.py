"""checkin's repositories on MongoDB: every query of the service, next to the
indexes in ``checkin.adapters.mongo`` that serve it, one module per part
(``mongo_access``, ``mongo_events``, ``mongo_registrations``, ``mongo_kiosks``,
``mongo_audit``, ``mongo_imports``, ``mongo_hours``), gathered here in one ``MongoStore``.

Each repository is bound to the database and to a session source: the session
of the running unit of work (``MongoUnitOfWork.store``), or none
(``MongoStore(db)`` for reads and single writes outside a transaction).
A unique index refusing a write becomes ``AlreadyStored``, so no caller
needs the driver's exceptions.
"""

from __future__ import annotations

from pymongo.database import Database

from checkin.adapters.mongo_access import MongoApiTokens, MongoEndedSessions, MongoOrganizations, MongoUsers
from checkin.adapters.mongo_audit import MongoAuditLog
from checkin.adapters.mongo_events import MongoEvents
from checkin.adapters.mongo_greeters import MongoGreeters, MongoWelcomes
from checkin.adapters.mongo_hours import MongoHourEntries
from checkin.adapters.mongo_imports import MongoImports
from checkin.adapters.mongo_kiosks import MongoKiosks
from checkin.adapters.mongo_privacy import MongoDataRequests, MongoErasedPeople, MongoExportParts, MongoPersonData
from checkin.adapters.mongo_registrations import MongoCheckinRequests, MongoPeople, MongoRegistrations
from checkin.adapters.mongo_retention import MongoRetention
from checkin.adapters.repository_base import SessionSource, no_session
from turnout_common.types import Doc


class MongoStore:
    """Every repository on one database, bound to one session source."""

    def __init__(self, db: Database[Doc], session: SessionSource = no_session) -> None:
        self.organizations = MongoOrganizations(db, session)
        self.users = MongoUsers(db, session)
        self.api_tokens = MongoApiTokens(db, session)
        self.ended_sessions = MongoEndedSessions(db, session)
        self.events = MongoEvents(db, session)
        self.people = MongoPeople(db, session)
        self.registrations = MongoRegistrations(db, session)
        self.checkin_requests = MongoCheckinRequests(db, session)
        self.kiosks = MongoKiosks(db, session)
        self.audit = MongoAuditLog(db, session)
        self.imports = MongoImports(db, session)
        self.data_requests = MongoDataRequests(db, session)
        self.export_parts = MongoExportParts(db, session)
        self.erased_people = MongoErasedPeople(db, session)
        self.person_data = MongoPersonData(db, session)
        self.retention = MongoRetention(db, session)
        self.hour_entries = MongoHourEntries(db, session)
        self.greeters = MongoGreeters(db, session)
        self.welcomes = MongoWelcomes(db, session)
