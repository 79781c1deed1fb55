"""Recording a check-in at the door: idempotent by the kiosk's client key."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from checkin.domain import admission, labels
from checkin.domain.admission import MAX_OFFLINE_AGE, CheckinOutcome, door_time
from checkin.domain.audit import CHECKIN_OVERRIDE, Actor, Subject
from checkin.domain.model import RuleBroken, display_name
from checkin.service_layer import audit, hours
from checkin.service_layer.context import Context
from checkin.service_layer.messages import checked_in_message, checked_out_message
from checkin.service_layer.ports import AlreadyStored, Transaction
from turnout_common.clock import to_rfc3339, utcnow
from turnout_common.types import Doc

__all__ = ["MAX_OFFLINE_AGE", "CheckinAnswer", "CheckinCommand", "CheckoutCommand", "door_time"]


@dataclass(frozen=True, slots=True)
class CheckinCommand:
    org_id: str
    event_id: str
    client_key: str
    method: str
    badge_code: str | None = None
    registration_id: str | None = None
    kiosk_id: str | None = None
    scanned_at: datetime | None = None
    override: bool = False
    actor_id: str | None = None
    # Only for importing past attendance (demo data, history imports): when
    # the door took the check-in. Live check-ins always use the server clock.
    recorded_at: datetime | None = None
    # Checked in together with this registration of the same party (an order,
    # a family): only members of that party, never a waitlisted one.
    group_of: str | None = None


@dataclass(frozen=True, slots=True)
class CheckinAnswer:
    """What a scan did (``outcome``) and what the door is told (``body``).

    ``registration``: the registration as the scan's transaction read and left
    it, so the door's extras need no read of their own (None for a replayed
    answer, which comes from the client-key record).
    """

    outcome: CheckinOutcome
    body: Doc
    registration: Doc | None = field(default=None, compare=False, repr=False)


def record_checkin(ctx: Context, command: CheckinCommand) -> CheckinAnswer:
    """Check a registration in; a replay of the same client key returns the first answer.

    Scans that arrive together are written together (``record_checkins_together``,
    through the process's group commit); overrides and imported history go alone.
    """
    if ctx.door is not None and not command.override and command.recorded_at is None and command.group_of is None:
        return ctx.door.submit(command)
    return record_checkin_alone(ctx, command)


def record_checkin_alone(ctx: Context, command: CheckinCommand) -> CheckinAnswer:
    """One scan in its own transaction.

    The common case (a first scan) costs one event lookup (cached for a few
    seconds) and a transaction of one read and four writes: registration,
    person, outbox and the client key. Replays and repeat scans take a slower path.
    """
    return _once(
        ctx,
        command.org_id,
        command.event_id,
        command.client_key,
        lambda tx, key, event: _check_in(tx, key, event, command),
    )


# One scan's work in its transaction: (transaction, request id, event) -> answer.
Step = Callable[[Transaction, str, Doc], CheckinAnswer]


def request_key(org_id: str, client_key: str) -> str:
    """Where a scan's first answer is kept: client keys are unique per organization."""
    return f"{org_id}:{client_key}"


def _once(ctx: Context, org_id: str, event_id: str, client_key: str, step: Step) -> CheckinAnswer:
    """Run ``step`` for a scan of the event, once per client key."""
    request_id = request_key(org_id, client_key)
    event = ctx.events.get(org_id, event_id)
    if event is None:
        raise RuleBroken("event_not_found", "no such event in your organization")
    try:
        return ctx.uow().run(lambda tx: step(tx, request_id, event))
    except AlreadyStored:
        # The client key was used before (a replay, or a concurrent double
        # tap that won the race): answer exactly as the first time.
        previous = ctx.store.checkin_requests.get(request_id)
        if previous is None:
            raise
        return _replayed(previous, event_id)


def _replayed(previous: Doc, event_id: str) -> CheckinAnswer:
    if previous["event_id"] != event_id:
        raise RuleBroken("client_key_reused", "this client_key was already used for another event", "client_key")
    body = previous["body"]
    return CheckinAnswer(CheckinOutcome(body["status"]), {**body, "replayed": True})


def _check_in(tx: Transaction, request_id: str, event: Doc, command: CheckinCommand) -> CheckinAnswer:
    now = command.recorded_at or utcnow()
    registrations = tx.store.registrations
    refused = admission.door_refusal(event, command.scanned_at, now, command.override)
    if refused is not None:
        # The door is closed to new check-ins; someone already in is still told so.
        registration = registrations.by_badge_or_id(command.badge_code, command.registration_id)
        person = None
    else:
        # The first scan of a valid badge: one read fetches the registration by
        # its unique key (badge code or id) together with the person's visit
        # count, then one conditional update by _id writes the check-in (and
        # lifts a waitlisted registration). Five statements and the commit,
        # where update + find on both the registration and the person took
        # seven: each statement in a transaction costs the engine CPU whatever
        # it does, and findAndModify is dearer still. A concurrent scan of the
        # same badge cannot check in twice: the registration was read in this
        # transaction's snapshot, so a write to it since then is a write
        # conflict, the unit of work runs again and the read sees the check-in.
        registration, person = registrations.with_visits(command.badge_code, command.registration_id)
    checkin = _door_record(command, now)
    visits_before = int(person.get("visits") or 0) if person is not None else 0
    decision = admission.admit(
        registration,
        org_id=command.org_id,
        event_id=command.event_id,
        checkin=checkin,
        visits_before=visits_before,
        refused=refused,
    )
    if isinstance(decision, admission.AlreadyIn):
        return _already_in(tx, command, request_id, now, registration, decision)
    assert registration is not None
    if command.group_of is not None:
        not_with_group = admission.group_refusal(registration, registrations.get(command.group_of))
        if not_with_group is not None:
            raise not_with_group
    if not registrations.set_fields(registration["_id"], decision.changes):
        # Changed since it was read: decide again on what is stored now.
        return _not_checked_in(tx, command, request_id, now)
    updated = {**registration, **decision.changes}
    tx.store.people.count_visit(updated["person_id"], now)
    answer = _admitted(tx, event, updated, decision, command, now)
    _remember(tx, request_id, command.event_id, answer, now)
    if command.override:
        _audit_override(tx, command, event, updated, now)
    return answer


def group_of(ctx: Context, org_id: str, event_id: str, registration_id: str) -> list[Doc]:
    """The others of a registration's party at the event, as the door shows them
    (``admission.group_member_view``); no party: an empty list."""
    registration = ctx.store.registrations.get_in_org(registration_id, org_id)
    if registration is None or registration["event_id"] != event_id:
        raise RuleBroken("registration_not_found", "no such registration at this event")
    return _members(ctx, registration)


def _members(ctx: Context, registration: Doc) -> list[Doc]:
    if not registration.get("party"):
        return []
    # The event's registrations by its index, the party picked here (groups are
    # asked for only at the door, for a registration that has a party).
    found = admission.group_members(registration, ctx.store.registrations.of_event(registration["event_id"]))
    return [admission.group_member_view(member) for member in found]


def door_extras(ctx: Context, org_id: str, event_id: str, body: Doc, registration: Doc | None = None) -> Doc:
    """What a kiosk shows after a check-in besides the answer: whether the person
    has an email (``has_email``), the others of their group (``group``, when they
    have a party) and their name label (``label``, when the event prints labels).

    ``registration``: the one the answer's transaction read (``CheckinAnswer.registration``);
    without it (a replayed answer), one registration read. None when the answer
    names no registration."""
    registration_id = body.get("registration_id")
    if body.get("status") not in (CheckinOutcome.CHECKED_IN, CheckinOutcome.ALREADY_CHECKED_IN) or not registration_id:
        return {}
    event = ctx.events.get(org_id, event_id)
    if registration is None or registration.get("_id") != registration_id or registration.get("org_id") != org_id:
        registration = ctx.store.registrations.get_in_org(str(registration_id), org_id)
    if event is None or registration is None:
        return {}
    # A name-only person (no address yet, e.g. from a Meetup roster): the kiosk asks once for one.
    extras: Doc = {"has_email": bool(registration.get("email_hint"))}
    if registration.get("party"):
        extras["group"] = _members(ctx, registration)
    if labels.labels_on(event) and body.get("status") == CheckinOutcome.CHECKED_IN:
        extras["label"] = labels.name_label(registration, event, first_time=bool(body.get("first_time_ever")))
    return extras


def label_for(ctx: Context, org_id: str, event_id: str, registration_id: str) -> Doc:
    """A registration's name label for the label page (first-timer: their first visit)."""
    event = ctx.events.get(org_id, event_id)
    registration = ctx.store.registrations.get_in_org(registration_id, org_id)
    if event is None:
        raise RuleBroken("event_not_found", "no such event in your organization")
    if registration is None or registration["event_id"] != event_id:
        raise RuleBroken("registration_not_found", "no such registration at this event")
    person = ctx.store.people.get(registration["person_id"]) or {}
    visits = int(person.get("visits") or 0)
    checked_in = registration.get("checkin") is not None
    return labels.name_label(registration, event, first_time=visits <= (1 if checked_in else 0))


def _audit_override(tx: Transaction, command: CheckinCommand, event: Doc, registration: Doc, now: datetime) -> None:
    """A staff check-in overriding the door window (never a kiosk scan: those are
    never overrides, so the scan path writes nothing more)."""
    audit.record(
        tx.store,
        command.org_id,
        _staff_actor(tx, command.org_id, command.actor_id or ""),
        CHECKIN_OVERRIDE,
        Subject("registration", registration["_id"]),
        at=now,
        event_id=command.event_id,
        registration_id=registration["_id"],
        person_id=registration["person_id"],
        details={
            "method": command.method,
            "opens_at": event["checkin_opens_at"],
            "closes_at": event["checkin_closes_at"],
            "within_window": event["checkin_opens_at"] <= now <= event["checkin_closes_at"],
        },
    )


def _staff_actor(tx: Transaction, org_id: str, actor_id: str) -> Actor:
    """Who overrode the window: a user by name, or an API token by its name."""
    if actor_id.startswith("api:"):
        token = tx.store.api_tokens.get_in_org(actor_id.removeprefix("api:"), org_id) or {}
        return Actor("api", actor_id, str(token.get("name") or ""), token.get("role"))
    user = tx.store.users.get_in_org(actor_id, org_id) or {}
    return Actor("user", actor_id, str(user.get("name") or ""), user.get("role"))


def _admitted(
    tx: Transaction, event: Doc, updated: Doc, decision: admission.Admit, command: CheckinCommand, now: datetime
) -> CheckinAnswer:
    """Publish the check-in and say welcome (the registration and visit are written by the caller)."""
    tx.publish(
        checked_in_message(
            updated,
            event,
            first_time_ever=decision.first_time_ever,
            visit_number=decision.visit_number,
            override=command.override,
        )
    )
    first_name = updated["first_name"]
    return CheckinAnswer(
        CheckinOutcome.CHECKED_IN,
        {
            "status": CheckinOutcome.CHECKED_IN.value,
            "registration_id": updated["_id"],
            "name": display_name(first_name, updated["last_name"]),
            "first_name": first_name,
            "checked_in_at": to_rfc3339(now),
            "kiosk_id": command.kiosk_id,
            "visit_number": decision.visit_number,
            "first_time_ever": decision.first_time_ever,
            "message": decision.welcome,
        },
        updated,
    )


def _request_doc(request_id: str, event_id: str, answer: CheckinAnswer, now: datetime) -> Doc:
    return {
        "_id": request_id,
        "event_id": event_id,
        "outcome": answer.outcome.value,
        "body": answer.body,
        "created_at": now,
    }


class _Contended(Exception):
    """A registration read in the batch's snapshot did not take its update: do each scan alone."""


@dataclass(frozen=True, slots=True)
class _Scan:
    """One scan of a batch: its place in the batch, the command and its event."""

    index: int
    command: CheckinCommand
    event: Doc


@dataclass(slots=True)
class _Decided:
    scan: _Scan
    registration: Doc
    decision: admission.Admit | admission.AlreadyIn


# What a batch's transaction tells each scan, by its index: an answer or a refusal.
Written = dict[int, CheckinAnswer | Exception]


def record_checkins_together(ctx: Context, commands: Sequence[CheckinCommand]) -> list[CheckinAnswer | Exception]:
    """First scans of several kiosks in one transaction: one statement per collection.

    The same rules as ``record_checkin_alone`` (``admission.admit``), with the
    reads and writes of all the scans gathered: one read of the registrations
    with their people's visit counts, one update of the registrations, one of
    the people, one insert of the client keys, the outbox at commit. What is
    not a plain scan of an open door (a closed door, a client key or badge
    twice in the batch) is done alone after the batch, with the full rules and
    messages; so is everything if a client key turns out to be used before (a
    replay) or the batch meets a concurrent change. Someone already in is told
    so from the batch's read (one read more: where and in which time zone).
    """
    outcomes: list[CheckinAnswer | Exception | None] = [None] * len(commands)
    now = utcnow()
    together, alone = _sort_out(ctx, commands, now, outcomes)
    if together:
        try:
            answers = ctx.uow().run(lambda tx: _write_together(tx, together, now))
        except (AlreadyStored, _Contended):
            answers = {}
            alone.extend(scan.index for scan in together)
        for index, answer in answers.items():
            outcomes[index] = answer
    for index in sorted(alone):
        try:
            outcomes[index] = record_checkin_alone(ctx, commands[index])
        except Exception as exc:  # noqa: BLE001 - that caller gets its own error
            outcomes[index] = exc
    return [outcome if outcome is not None else RuntimeError("scan left unanswered") for outcome in outcomes]


def _sort_out(
    ctx: Context, commands: Sequence[CheckinCommand], now: datetime, outcomes: list[CheckinAnswer | Exception | None]
) -> tuple[list[_Scan], list[int]]:
    """The scans that can be written together, and those (by index) to do alone; unknown events answered."""
    together: list[_Scan] = []
    alone: list[int] = []
    keys_seen: set[tuple[str, str]] = set()
    for index, command in enumerate(commands):
        event = ctx.events.get(command.org_id, command.event_id)
        if event is None:
            outcomes[index] = RuleBroken("event_not_found", "no such event in your organization")
            continue
        keys = {("request", request_key(command.org_id, command.client_key)), _registration_key(command)}
        if keys & keys_seen or admission.door_refusal(event, command.scanned_at, now, False) is not None:
            alone.append(index)
            continue
        keys_seen |= keys
        together.append(_Scan(index, command, event))
    return together, alone


def _write_together(tx: Transaction, together: list[_Scan], now: datetime) -> Written:
    answers, decided = _decide_together(tx, together, now)
    admitted = [(d.registration, d.decision) for d in decided if isinstance(d.decision, admission.Admit)]
    if admitted:
        changes = [(registration["_id"], decision.changes) for registration, decision in admitted]
        if tx.store.registrations.set_fields_many(changes) != len(changes):
            raise _Contended()
        tx.store.people.count_visits([registration["person_id"] for registration, _ in admitted], now)
    requests: list[Doc] = []
    for d in decided:
        command = d.scan.command
        if isinstance(d.decision, admission.Admit):
            updated = {**d.registration, **d.decision.changes}
            answer = _admitted(tx, d.scan.event, updated, d.decision, command, now)
        else:
            answer = _already_in_answer(tx, d.registration, d.decision, d.scan.event)
        answers[d.scan.index] = answer
        requests.append(_request_doc(request_key(command.org_id, command.client_key), command.event_id, answer, now))
    tx.store.checkin_requests.remember_many(requests)
    return answers


def _decide_together(tx: Transaction, together: list[_Scan], now: datetime) -> tuple[Written, list[_Decided]]:
    """Read every scan's registration and visit count at once, then decide each in order."""
    found = tx.store.registrations.with_visits_many(
        [s.command.badge_code for s in together if s.command.badge_code is not None],
        [s.command.registration_id for s in together if s.command.badge_code is None and s.command.registration_id],
    )
    by_key: dict[tuple[str, str], tuple[Doc | None, Doc | None]] = {}
    for row in found:
        by_key[("badge", row[0].get("badge_code") or "")] = row
        by_key[("id", row[0]["_id"])] = row
    refused: Written = {}
    decided: list[_Decided] = []
    counted: Counter[str] = Counter()  # visits this batch adds per person, ahead of the stored count
    for scan in together:
        command = scan.command
        registration, person = by_key.get(_registration_key(command), (None, None))
        visits_before = int(person.get("visits") or 0) + counted[person["_id"]] if person is not None else 0
        try:
            decision = admission.admit(
                registration,
                org_id=command.org_id,
                event_id=command.event_id,
                checkin=_door_record(command, now),
                visits_before=visits_before,
                refused=None,
            )
        except RuleBroken as broken:
            refused[scan.index] = broken
            continue
        assert registration is not None
        if isinstance(decision, admission.Admit):
            counted[registration["person_id"]] += 1
        decided.append(_Decided(scan, registration, decision))
    return refused, decided


def _registration_key(command: CheckinCommand) -> tuple[str, str]:
    if command.badge_code is not None:
        return ("badge", command.badge_code)
    return ("id", command.registration_id or "")


def _door_record(command: CheckinCommand, now: datetime) -> Doc:
    """The ``checkin`` a scan writes on the registration."""
    return {
        "method": command.method,
        "kiosk_id": command.kiosk_id,
        "scanned_at": command.scanned_at or now,
        "received_at": now,
        "override": command.override,
        "actor_id": command.actor_id,
    }


def _not_checked_in(tx: Transaction, command: CheckinCommand, request_id: str, now: datetime) -> CheckinAnswer:
    """The check-in update changed nothing: already in (a concurrent scan), or refuse."""
    registration = tx.store.registrations.by_badge_or_id(command.badge_code, command.registration_id)
    decision = admission.admit(
        registration,
        org_id=command.org_id,
        event_id=command.event_id,
        checkin={},
        visits_before=0,
        refused=RuleBroken("conflict", "checked in concurrently; please scan again"),
    )
    assert isinstance(decision, admission.AlreadyIn) and registration is not None
    return _already_in(tx, command, request_id, now, registration, decision)


def _already_in(
    tx: Transaction,
    command: CheckinCommand,
    request_id: str,
    now: datetime,
    registration: Doc | None,
    decision: admission.AlreadyIn,
) -> CheckinAnswer:
    assert registration is not None
    answer = _already_in_answer(tx, registration, decision)
    _remember(tx, request_id, command.event_id, answer, now)
    return answer


def _already_in_answer(
    tx: Transaction, registration: Doc, decision: admission.AlreadyIn, event: Doc | None = None
) -> CheckinAnswer:
    """When and where the person checked in, in the event's own time (nothing new is written).

    ``event``: the registration's event when the caller has it already (a batch does).
    """
    existing = decision.checkin
    if event is not None and event.get("timezone"):
        timezone = str(event["timezone"])
    else:
        timezone = tx.store.events.timezone_of(registration["event_id"]) or "UTC"
    kiosk_name = tx.store.kiosks.name_of(existing["kiosk_id"]) if existing.get("kiosk_id") else None
    return CheckinAnswer(
        CheckinOutcome.ALREADY_CHECKED_IN,
        {
            "status": CheckinOutcome.ALREADY_CHECKED_IN.value,
            "registration_id": registration["_id"],
            "name": decision.name,
            "checked_in_at": to_rfc3339(existing["received_at"]),
            "kiosk_id": existing.get("kiosk_id"),
            "message": admission.already_in_message(decision.name, existing["received_at"], timezone, kiosk_name),
        },
        registration,
    )


def _remember(tx: Transaction, request_id: str, event_id: str, answer: CheckinAnswer, now: datetime) -> None:
    tx.store.checkin_requests.remember(_request_doc(request_id, event_id, answer, now))


@dataclass(frozen=True, slots=True)
class CheckoutCommand:
    org_id: str
    event_id: str
    client_key: str
    badge_code: str | None = None
    registration_id: str | None = None
    kiosk_id: str | None = None
    method: str = "qr"
    scanned_at: datetime | None = None
    closed_by: str = "attendee"
    actor_id: str | None = None


def record_checkout(ctx: Context, command: CheckoutCommand) -> CheckinAnswer:
    """Check someone out (volunteer hours); idempotent by client key like check-ins."""
    return _once(
        ctx,
        command.org_id,
        command.event_id,
        command.client_key,
        lambda tx, key, event: _check_out(tx, key, event, command, hours_link_for(ctx)),
    )


# The volunteer's signed hours page for a check-out's message: (event, person_id) -> URL or None.
HoursLinkFor = Callable[[Doc, str], str | None]


def hours_link_for(ctx: Context) -> HoursLinkFor:
    """A volunteer shift's check-out carries the person's hours page (followup's volunteer-hours
    email links to it); other kinds of event count no hours and carry none."""

    def link(event: Doc, person_id: str) -> str | None:
        if not admission.closes_forgotten_checkouts(event):
            return None
        return hours.hours_link_url(ctx, event["org_id"], person_id)

    return link


def _check_out(
    tx: Transaction, request_id: str, event: Doc, command: CheckoutCommand, hours_link: HoursLinkFor
) -> CheckinAnswer:
    now = utcnow()
    registration = tx.store.registrations.by_badge_or_id(command.badge_code, command.registration_id)
    scanned = command.scanned_at or now
    decision = admission.check_out(registration, org_id=command.org_id, event_id=command.event_id, scanned_at=scanned)
    assert registration is not None
    if isinstance(decision, admission.AlreadyOut):
        answer = CheckinAnswer(
            CheckinOutcome.ALREADY_CHECKED_OUT,
            {
                "status": CheckinOutcome.ALREADY_CHECKED_OUT.value,
                "registration_id": registration["_id"],
                "name": decision.name,
                "hours": decision.checkout["hours"],
                "message": decision.message,
            },
        )
        _remember(tx, request_id, command.event_id, answer, now)
        return answer
    hours = decision.hours
    checkout = {
        "method": command.method,
        "kiosk_id": command.kiosk_id,
        "scanned_at": scanned,
        "received_at": now,
        "hours": hours,
        "closed_by": command.closed_by,
        "actor_id": command.actor_id,
    }
    if not tx.store.registrations.set_checkout_if_none(registration["_id"], checkout):
        raise RuleBroken("conflict", "checked out concurrently; please scan again")
    people = tx.store.people
    people.add_hours(registration["person_id"], hours)
    stored_total = people.volunteer_hours(registration["person_id"])
    total = round(stored_total if stored_total is not None else hours, 2)
    registration["checkout"] = checkout
    tx.publish(checked_out_message(registration, event, hours_link(event, registration["person_id"])))
    answer = CheckinAnswer(
        CheckinOutcome.CHECKED_OUT,
        {
            "status": CheckinOutcome.CHECKED_OUT.value,
            "registration_id": registration["_id"],
            "name": decision.name,
            "hours": hours,
            "total_hours": total,
            "message": admission.thank_you(registration["first_name"], hours, total),
        },
    )
    _remember(tx, request_id, command.event_id, answer, now)
    return answer


def close_forgotten_checkouts(
    tx: Transaction, event: Doc, ended_at: datetime, hours_link: HoursLinkFor | None = None
) -> int:
    """At a volunteer event's end, check out everyone still in, at the end time (rule recorded;
    the hours review flags these check-outs: ``checkin.domain.hours.needs_review``)."""
    if not admission.closes_forgotten_checkouts(event):
        return 0
    still_in = admission.still_in(tx.store.registrations.of_event(event["_id"]))
    for registration in still_in:
        checkout = admission.forgotten_checkout(registration, event["ends_at"], ended_at)
        tx.store.registrations.set_fields(registration["_id"], {"checkout": checkout})
        tx.store.people.add_hours(registration["person_id"], checkout["hours"])
        registration["checkout"] = checkout
        link = hours_link(event, registration["person_id"]) if hours_link is not None else None
        tx.publish(checked_out_message(registration, event, link))
    return len(still_in)
