"""The facts behind a batch of nudges, loaded in a few queries, and what each
email says: the send-time decision's input and the templates' context.

Used by the sender (for real sends) and by the preview (any nudge for any
attendee), so a preview shows exactly what would go out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import formataddr
from typing import Any
from urllib.parse import quote

from followup.domain.audience import AttendanceFacts, ContactFacts, SendFacts
from followup.domain.nudges import CALENDAR_KINDS, NudgeKind, message_id
from followup.domain.schedule import zone
from followup.domain.settings import FollowupSettings
from followup.domain.suppression import suppression_ids
from followup.service_layer.context import Services
from followup.service_layer.ports import Attachment, Draft
from followup.service_layer.repositories import Store
from turnout_common.calendar import CANCEL, REQUEST, Gathering, Person, calendar_file, file_name
from turnout_common.calendar import CONTENT_TYPE as CALENDAR_CONTENT_TYPE
from turnout_common.types import Doc

UPCOMING = 20  # gatherings offered as "next" in an email


def load_settings(svc: Services, org_id: str, event_id: str | None, store: Store | None = None) -> FollowupSettings:
    docs = (store or svc.store).settings.of(org_id, event_id)
    return FollowupSettings.from_docs(
        docs.get(f"org:{org_id}"),
        docs.get(f"event:{event_id}") if event_id else None,
        fallback_name=svc.settings.mail_from_name,
        introductions_per_person=svc.settings.introductions_per_person,
        win_back=svc.win_back_rule,
    )


def contact_facts(contact: Doc | None, suppressed: bool) -> ContactFacts | None:
    if contact is None:
        return None
    return ContactFacts(
        email=contact.get("email"),
        consent=bool(contact.get("consent_email")),
        unsubscribed=bool(contact.get("unsubscribed")),
        suppressed=suppressed,
    )


def attendance_facts(row: Doc | None) -> AttendanceFacts | None:
    if row is None:
        return None
    return AttendanceFacts(
        registration_status=row.get("registration_status"),
        checked_in=row.get("checked_in_at") is not None,
        first_time_ever=bool(row.get("first_time_ever")),
        hours=row.get("hours"),
    )


def load_suppressed(svc: Services, org_email_pairs: Iterable[tuple[str, str]]) -> set[str]:
    """The suppression keys found for these addresses (plain, or an erased person's digest)."""
    return svc.store.suppressions.existing(
        key for org, email in org_email_pairs if email for key in suppression_ids(org, email)
    )


def is_suppressed(suppressed: set[str], org_id: str, email: str | None) -> bool:
    """Whether ``load_suppressed``'s answer holds this address (under either key)."""
    return bool(email) and any(key in suppressed for key in suppression_ids(org_id, str(email)))


@dataclass
class BatchFacts:
    """What a batch of nudges needs to be decided and rendered."""

    now: datetime
    events: dict[str, Doc] = field(default_factory=dict)
    contacts: dict[str, Doc] = field(default_factory=dict)
    suppressed: set[str] = field(default_factory=set)
    attendance: dict[tuple[str, str], Doc] = field(default_factory=dict)
    settings: dict[tuple[str, str | None], FollowupSettings] = field(default_factory=dict)
    hours_total: dict[str, float] = field(default_factory=dict)
    latest_event: dict[str, str] = field(default_factory=dict)  # person -> last gathering attended
    suggestions: dict[tuple[str, str], list[Doc]] = field(default_factory=dict)  # (event, person)
    introductions: dict[str, Doc] = field(default_factory=dict)
    upcoming: dict[str, list[Doc]] = field(default_factory=dict)  # org -> next gatherings

    def contact(self, person_id: str) -> Doc | None:
        return self.contacts.get(person_id)

    def is_suppressed(self, org_id: str, contact: Doc | None) -> bool:
        return is_suppressed(self.suppressed, org_id, (contact or {}).get("email"))

    def settings_for(self, nudge: Doc) -> FollowupSettings:
        return self.settings[(nudge["org_id"], nudge.get("event_id"))]

    def event_of(self, nudge: Doc) -> Doc | None:
        return self.events.get(nudge.get("event_id") or nudge.get("anchor_event_id") or "")


def load_batch_facts(svc: Services, nudges: list[Doc], now: datetime) -> BatchFacts:
    facts = BatchFacts(now=now)
    event_ids = {n.get("event_id") or n.get("anchor_event_id") for n in nudges} - {None}
    store = svc.store
    facts.events = {doc["_id"]: doc for doc in store.events.by_ids(str(e) for e in event_ids)}
    people = {n["person_id"] for n in nudges}
    kinds = {n["kind"] for n in nudges}
    # Introductions: the suggestions (for requests) and the agreed pairs (for introductions).
    intro_ids = [n["introduction_id"] for n in nudges if n.get("introduction_id")]
    facts.introductions = {doc["_id"]: doc for doc in store.introductions.by_ids(intro_ids)}
    if NudgeKind.INTRODUCTION_REQUEST in kinds:
        by_event: dict[str, set[str]] = defaultdict(set)
        for n in nudges:
            if n["kind"] == NudgeKind.INTRODUCTION_REQUEST:
                by_event[n["event_id"]].add(n["person_id"])
        for event_id, persons in by_event.items():
            for doc in store.introductions.of_people_at(event_id, persons):
                facts.introductions[doc["_id"]] = doc
                for person in doc["people"]:
                    if person in persons:
                        facts.suggestions.setdefault((event_id, person), []).append(doc)
    partners = {p for doc in facts.introductions.values() for p in doc["people"]}
    facts.contacts = {doc["_id"]: doc for doc in store.contacts.by_ids(people | partners)}
    facts.suppressed = load_suppressed(
        svc,
        [(n["org_id"], str(facts.contacts.get(n["person_id"], {}).get("email") or "")) for n in nudges]
        + [(n["org_id"], str(n.get("to_email") or "")) for n in nudges if n["kind"] == NudgeKind.DATA_LINK],
    )
    by_event_people: dict[str, set[str]] = defaultdict(set)
    for n in nudges:
        if n.get("event_id"):
            by_event_people[n["event_id"]].add(n["person_id"])
    for event_id, persons in by_event_people.items():
        for row in store.attendance.of_people(persons, event_id):
            facts.attendance[(event_id, row["person_id"])] = row
    history_people = {n["person_id"] for n in nudges if n["kind"] in (NudgeKind.VOLUNTEER_HOURS, NudgeKind.WIN_BACK)}
    if history_people:
        latest: dict[str, tuple[datetime, str]] = {}
        for row in store.attendance.of_people(history_people):
            if row.get("hours") is not None:
                facts.hours_total[row["person_id"]] = facts.hours_total.get(row["person_id"], 0.0) + float(row["hours"])
            checked_in = row.get("checked_in_at")
            if checked_in is not None:
                seen = latest.get(row["person_id"])
                if seen is None or checked_in > seen[0]:
                    latest[row["person_id"]] = (checked_in, row["event_id"])
        facts.latest_event = {person: event_id for person, (_, event_id) in latest.items()}
    for n in nudges:
        key = (n["org_id"], n.get("event_id"))
        if key not in facts.settings:
            facts.settings[key] = load_settings(svc, n["org_id"], n.get("event_id"))
    if kinds & {NudgeKind.THANK_YOU, NudgeKind.WE_MISSED_YOU, NudgeKind.WIN_BACK, NudgeKind.FIRST_TIMER_WELCOME}:
        for org_id in {n["org_id"] for n in nudges}:
            facts.upcoming[org_id] = store.events.upcoming(org_id, now, UPCOMING)
    return facts


def pending_suggestions(
    facts: BatchFacts, event_id: str | None, person_id: str, introduction_round: str | None = None
) -> list[Doc]:
    """Suggestions for this person at this gathering that they have not answered yet, of
    the request's round (the first round's, or a late round's: each has its own request)."""
    return [
        doc
        for doc in facts.suggestions.get((event_id or "", person_id), [])
        if person_id not in doc.get("accepted_by", [])
        and doc.get("state") == "suggested"
        and doc.get("round") == introduction_round
    ]


def send_facts(svc: Services, facts: BatchFacts, nudge: Doc) -> SendFacts:
    """The send-time decision's input for one nudge."""
    kind = NudgeKind(nudge["kind"])
    if kind == NudgeKind.DATA_LINK:
        # Sent to the address the person asked from, whatever their consent: only a
        # suppressed (bounced, blocked) address stops it.
        address = nudge.get("to_email")
        return SendFacts(
            kind=kind,
            contact=ContactFacts(
                email=address,
                consent=True,
                suppressed=is_suppressed(facts.suppressed, nudge["org_id"], address),
            ),
            enabled=True,
            event_kind=None,
            attendance=None,
            send_at=nudge["send_at"],
            next_window_opening=facts.now,
            expires_at=nudge.get("expires_at"),
        )
    if kind.value in CALENDAR_KINDS:
        return calendar_send_facts(facts, nudge, kind)
    contact = facts.contact(nudge["person_id"])
    event = facts.event_of(nudge)
    tz = zone(event["timezone"] if event else "UTC")
    settings = facts.settings_for(nudge)
    introduction = facts.introductions.get(nudge.get("introduction_id") or "")
    return SendFacts(
        kind=kind,
        contact=contact_facts(contact, facts.is_suppressed(nudge["org_id"], contact)),
        enabled=settings.enabled(kind),
        event_kind=event["kind"] if event else None,
        attendance=attendance_facts(facts.attendance.get((nudge.get("event_id") or "", nudge["person_id"]))),
        send_at=nudge["send_at"],
        next_window_opening=svc.window.next_allowed(facts.now, tz),
        pending_suggestions=len(
            pending_suggestions(facts, nudge.get("event_id"), nudge["person_id"], nudge.get("introduction_round"))
        ),
        introduction_agreed=bool(introduction and introduction.get("state") == "agreed"),
        still_away=facts.latest_event.get(nudge["person_id"]) == nudge.get("anchor_event_id"),
    )


def calendar_send_facts(facts: BatchFacts, nudge: Doc, kind: NudgeKind) -> SendFacts:
    """A confirmation or calendar update: to the contact's current address whatever their
    consent (only a suppressed address stops it), at any hour, while the gathering is ahead."""
    contact = facts.contact(nudge["person_id"])
    event = facts.event_of(nudge) or {}
    ends_at = event.get("ends_at")
    return SendFacts(
        kind=kind,
        contact=None
        if contact is None
        else ContactFacts(
            email=contact.get("email"), consent=True, suppressed=facts.is_suppressed(nudge["org_id"], contact)
        ),
        enabled=facts.settings_for(nudge).enabled(kind),
        event_kind=event.get("kind"),
        attendance=attendance_facts(facts.attendance.get((nudge.get("event_id") or "", nudge["person_id"]))),
        send_at=nudge["send_at"],
        next_window_opening=facts.now,
        event_status=event.get("status"),
        event_over=ends_at is not None and ends_at <= facts.now,
    )


# -- what the email says ------------------------------------------------------


def _when(moment: datetime | None, tz_name: str) -> str:
    if moment is None:
        return ""
    local = moment.astimezone(zone(tz_name))
    return f"{local:%A} {local.day} {local:%B %Y}, {local:%H:%M}"


def _event_view(event: Doc | None) -> dict[str, Any]:
    if event is None:
        return {"title": "our last gathering", "kind": "other", "when": "", "venue": None}
    return {
        "id": event["_id"],
        "title": event["title"],
        "kind": event["kind"],
        "when": _when(event.get("starts_at"), event.get("timezone", "UTC")),
        "venue": event.get("venue"),
    }


def _short_name(contact: Doc | None) -> str:
    """First name and last initial: all a suggestion reveals before both agree."""
    if contact is None:
        return "someone"
    last = str(contact.get("last_name") or "").strip()
    return f"{contact.get('first_name', '')} {last[:1] + '.' if last else ''}".strip()


def _full_name(contact: Doc | None) -> str:
    if contact is None:
        return ""
    return f"{contact.get('first_name', '')} {contact.get('last_name', '')}".strip()


class LinkMaker:
    """The absolute, signed URLs of one email."""

    def __init__(self, svc: Services, followup_id: str) -> None:
        self.svc = svc
        self.followup_id = followup_id
        self.base = svc.settings.public_url

    def unsubscribe(self) -> str:
        return f"{self.base}/u/{self.svc.links.unsubscribe(self.followup_id)}"

    def open_pixel(self) -> str:
        return f"{self.base}/o/{self.svc.links.open(self.followup_id)}.gif"

    def click(self, url: str) -> str:
        token = self.svc.links.click(self.followup_id, url)
        return f"{self.base}/c/{token}?u={quote(url, safe='')}"

    def feedback(self, rating: int) -> str:
        return f"{self.base}/f/{self.svc.links.feedback(self.followup_id)}?rating={rating}"

    def accept(self, introduction_id: str, person_id: str) -> str:
        return f"{self.base}/i/{self.svc.links.introduction(introduction_id, person_id)}"


def render_context(svc: Services, facts: BatchFacts, nudge: Doc) -> dict[str, Any]:
    """The templates' context for one nudge."""
    links = LinkMaker(svc, nudge["_id"])
    settings = facts.settings_for(nudge)
    branding = settings.branding
    contact = facts.contact(nudge["person_id"]) or {}
    event = facts.event_of(nudge)
    kind = nudge["kind"]
    upcoming = facts.upcoming.get(nudge["org_id"], [])
    context: dict[str, Any] = {
        "kind": kind,
        "org": {
            "name": branding.name,
            "primary_color": branding.primary_color,
            "accent_color": branding.accent_color,
            "postal_address": branding.postal_address,
            "website_url": links.click(branding.website_url) if branding.website_url else None,
        },
        "person": {"first_name": contact.get("first_name") or "there", "last_name": contact.get("last_name") or ""},
        "event": _event_view(event),
        "links": {
            "unsubscribe": links.unsubscribe(),
            "open_pixel": links.open_pixel(),
            "feedback": [{"rating": n, "url": links.feedback(n)} for n in range(1, 6)],
        },
        "note": settings.note,
        "photos_url": links.click(settings.photos_url) if settings.photos_url else None,
        "next_events": [_event_view(doc) for doc in upcoming[:3]],
        "next_similar": None,
    }
    if event is not None:
        similar = [doc for doc in upcoming if doc["kind"] == event["kind"] and doc["_id"] != event["_id"]]
        context["next_similar"] = _event_view(similar[0]) if similar else None
    row = facts.attendance.get((nudge.get("event_id") or "", nudge["person_id"])) or {}
    note = nudge.get("winback_note") if kind == NudgeKind.WIN_BACK else None
    # A win-back's personal note, as drafted from the person's history (and edited by an organizer).
    context["winback"] = None
    if note:
        text = str(note.get("body") or "").replace("\r\n", "\n")
        paragraphs = [[line.strip() for line in p.strip().split("\n")] for p in text.split("\n\n") if p.strip()]
        context["winback"] = {"subject": str(note.get("subject") or ""), "paragraphs": paragraphs}
    if kind == NudgeKind.VOLUNTEER_HOURS:
        context["hours"] = {
            "event": float(row.get("hours") or 0.0),
            "total": facts.hours_total.get(nudge["person_id"], float(row.get("hours") or 0.0)),
            # checkin's signed page of the person's hours, where they get their hour statement.
            "statement_url": row.get("hours_link"),
        }
    if kind == NudgeKind.INTRODUCTION_REQUEST:
        suggestions = []
        for doc in pending_suggestions(
            facts, nudge.get("event_id"), nudge["person_id"], nudge.get("introduction_round")
        ):
            other = next(p for p in doc["people"] if p != nudge["person_id"])
            suggestions.append(
                {
                    "name": _short_name(facts.contact(other)),
                    "they_offer": doc["offers"].get(other, []),
                    "you_offer": doc["offers"].get(nudge["person_id"], []),
                    "accept_url": links.accept(doc["_id"], nudge["person_id"]),
                }
            )
        context["suggestions"] = suggestions
    if kind == NudgeKind.INTRODUCTION:
        doc = facts.introductions.get(nudge.get("introduction_id") or "") or {"people": [], "offers": {}}
        other = next((p for p in doc["people"] if p != nudge["person_id"]), "")
        other_contact = facts.contact(other)
        context["introduction"] = {
            "name": _full_name(other_contact),
            "first_name": (other_contact or {}).get("first_name", ""),
            "email": (other_contact or {}).get("email", ""),
            "they_offer": doc["offers"].get(other, []),
            "you_offer": doc["offers"].get(nudge["person_id"], []),
        }
    return context


def gathering_of(event: Doc) -> Gathering:
    """The gathering as its calendar files describe it (the SEQUENCE from its last change)."""
    return Gathering(
        org_id=event["org_id"],
        event_id=event["_id"],
        title=event["title"],
        starts_at=event["starts_at"],
        ends_at=event["ends_at"],
        timezone=event.get("timezone") or "UTC",
        venue=event.get("venue") or None,
        description=event.get("description") or None,
        cancelled=event.get("status") == "cancelled",
        changed_at=event.get("cancelled_at") or event.get("changed_at"),
        sequence=int(event.get("calendar_sequence") or 0),
    )


def _span(event: Doc) -> str:
    """``Saturday 3 April 2027, 10:30–13:00 (Europe/Berlin)``, in the gathering's zone."""
    tz_name = event.get("timezone") or "UTC"
    starts, ends = event["starts_at"].astimezone(zone(tz_name)), event["ends_at"].astimezone(zone(tz_name))
    until = f"{ends:%H:%M}" if ends.date() == starts.date() else _when(ends, tz_name)
    return f"{_when(starts, tz_name)}\u2013{until} ({tz_name})"


def calendar_context(svc: Services, facts: BatchFacts, nudge: Doc) -> dict[str, Any]:
    """The templates' context for a confirmation or a calendar update."""
    branding = facts.settings_for(nudge).branding
    contact = facts.contact(nudge["person_id"]) or {}
    event = facts.event_of(nudge) or {}
    return {
        "kind": nudge["kind"],
        "org": {
            "name": branding.name,
            "primary_color": branding.primary_color,
            "accent_color": branding.accent_color,
            "postal_address": branding.postal_address,
        },
        "person": {"first_name": contact.get("first_name") or "there"},
        "event": {
            "title": event.get("title") or "the gathering",
            "when": _span(event) if event.get("starts_at") and event.get("ends_at") else "",
            "venue": event.get("venue"),
            "description": event.get("description") or "",
        },
    }


def calendar_attachment(svc: Services, facts: BatchFacts, nudge: Doc, organizer_name: str) -> Attachment:
    """The gathering's calendar file for this person: REQUEST (a confirmation, an update)
    or CANCEL, same UID for every file about the gathering, SEQUENCE from its last change."""
    event = facts.event_of(nudge)
    if event is None:
        raise ValueError("the gathering of this calendar email is unknown")
    contact = facts.contact(nudge["person_id"]) or {}
    method = CANCEL if nudge["kind"] == NudgeKind.EVENT_CANCELLED else REQUEST
    data = calendar_file(
        gathering_of(event),
        method=method,
        organizer=Person(organizer_name, svc.settings.mail_from_address),
        stamp=facts.now,
        attendee=Person(_full_name(contact), str(contact.get("email") or "")),
    )
    return Attachment(
        filename=file_name(event["title"]),
        content_type=f"{CALENDAR_CONTENT_TYPE}; method={method}",
        data=data,
        inline_alternative=True,
    )


def data_link_context(svc: Services, facts: BatchFacts, nudge: Doc) -> dict[str, Any]:
    """The templates' context for the link a person asked for (their data, or its erasure)."""
    branding = facts.settings_for(nudge).branding
    expires = nudge.get("expires_at")
    return {
        "kind": nudge["kind"],
        "org": {
            "name": nudge.get("organization_name") or branding.name,
            "primary_color": branding.primary_color,
            "accent_color": branding.accent_color,
            "postal_address": branding.postal_address,
        },
        "person": {"first_name": nudge.get("first_name") or "there"},
        "purpose": nudge.get("purpose") or "export",
        "link": nudge.get("link") or "",
        "expires": _when(expires, "UTC") + " UTC" if expires else "",
    }


def draft_for(svc: Services, facts: BatchFacts, nudge: Doc) -> Draft:
    """Everything the renderer needs for one nudge."""
    settings = svc.settings
    branding = facts.settings_for(nudge).branding
    mail_id = nudge.get("message_id") or message_id(nudge["_id"], settings.mail_domain)
    if nudge["kind"] == NudgeKind.DATA_LINK:
        # Transactional: no unsubscribe (the person asked for this one message), no tracking.
        address = str(nudge.get("to_email") or "")
        context = data_link_context(svc, facts, nudge)
        return Draft(
            followup_id=nudge["_id"],
            kind=nudge["kind"],
            message_id=mail_id,
            envelope_from=settings.mail_from_address,
            from_header=formataddr((context["org"]["name"] or settings.mail_from_name, settings.mail_from_address)),
            to_address=address,
            to_header=formataddr((str(nudge.get("first_name") or ""), address)),
            reply_to=branding.reply_to,
            date=facts.now,
            context=context,
            headers={
                "X-Turnout-Followup-Id": nudge["_id"],
                "X-Turnout-Nudge": nudge["kind"],
                "X-Turnout-Org": nudge["org_id"],
            },
        )
    if nudge["kind"] in CALENDAR_KINDS:
        # Transactional too: no unsubscribe, no tracking; the calendar file attached.
        contact = facts.contact(nudge["person_id"]) or {}
        address = str(contact.get("email") or "")
        context = calendar_context(svc, facts, nudge)
        sender = context["org"]["name"] or settings.mail_from_name
        return Draft(
            followup_id=nudge["_id"],
            kind=nudge["kind"],
            message_id=mail_id,
            envelope_from=settings.mail_from_address,
            from_header=formataddr((sender, settings.mail_from_address)),
            to_address=address,
            to_header=formataddr((_full_name(contact), address)),
            reply_to=branding.reply_to,
            date=facts.now,
            context=context,
            headers={
                "X-Turnout-Followup-Id": nudge["_id"],
                "X-Turnout-Nudge": nudge["kind"],
                "X-Turnout-Org": nudge["org_id"],
            },
            attachments=(calendar_attachment(svc, facts, nudge, sender),),
        )
    contact = facts.contact(nudge["person_id"]) or {}
    email = str(contact.get("email") or "")
    context = render_context(svc, facts, nudge)
    list_name = branding.name or settings.mail_from_name
    unsubscribe = [f"<{context['links']['unsubscribe']}>"]
    if settings.unsubscribe_mailto:
        token = svc.links.unsubscribe(nudge["_id"])
        unsubscribe.append(f"<mailto:{settings.unsubscribe_mailto}?subject=unsubscribe%20{token}>")
    return Draft(
        followup_id=nudge["_id"],
        kind=nudge["kind"],
        message_id=mail_id,
        envelope_from=settings.mail_from_address,
        from_header=formataddr((branding.name or settings.mail_from_name, settings.mail_from_address)),
        to_address=email,
        to_header=formataddr((_full_name(contact), email)),
        reply_to=branding.reply_to,
        date=facts.now,
        context=context,
        headers={
            "List-Unsubscribe": ", ".join(unsubscribe),
            # RFC 8058: a POST to the https URI unsubscribes, no further step.
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": f"{list_name} <{nudge['org_id']}.followup.{settings.mail_domain}>",
            "X-Turnout-Followup-Id": nudge["_id"],
            "X-Turnout-Nudge": nudge["kind"],
            "X-Turnout-Org": nudge["org_id"],
        },
    )
