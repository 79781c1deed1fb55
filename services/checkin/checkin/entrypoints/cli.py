"""``python -m checkin.entrypoints.cli``: organizer administration from a shell.

- ``create-org``: a new organization and its owner (production set-up).
- ``load-demo``: the demo organization, with past events and attendance
  history and an event happening now (idempotent: does nothing if present).
"""

from __future__ import annotations

import argparse
import getpass
import random
import sys
from datetime import timedelta

from checkin.bootstrap import build_context
from checkin.config import Settings
from checkin.domain.model import RuleBroken, fold_name
from checkin.service_layer import checkins, events, organizations, registrations
from checkin.service_layer.context import Context
from turnout_common.clock import utcnow

DEMO_ORG = "Riverside Community Pantry"

FIRST = [
    "Amber",
    "José",
    "Mei",
    "Tomasz",
    "Aisha",
    "Liam",
    "Sofía",
    "Kwame",
    "Noor",
    "Ivan",
    "Grace",
    "Diego",
    "Hana",
    "Oluwaseun",
    "Priya",
    "Lukas",
    "Fatima",
    "Mateo",
    "Yuki",
    "Chloe",
    "Samir",
    "Elena",
    "Marcus",
    "Zainab",
    "Owen",
    "Lucía",
    "Ravi",
    "Ingrid",
    "Tariq",
    "Ana",
]
LAST = [
    "Nguyen",
    "García",
    "Okafor",
    "Kowalski",
    "Haddad",
    "Murphy",
    "Rossi",
    "Mensah",
    "Khan",
    "Petrov",
    "Lee",
    "Fernández",
    "Sato",
    "Adeyemi",
    "Sharma",
    "Müller",
    "Ali",
    "López",
    "Tanaka",
    "Martin",
    "Aziz",
    "Popescu",
    "Brown",
    "Ibrahim",
    "Evans",
    "Torres",
    "Patel",
    "Larsen",
    "Hassan",
    "Silva",
]
OFFERS = [
    "graphic design",
    "grant writing",
    "spanish translation",
    "driving",
    "cooking",
    "accounting",
    "web development",
    "photography",
]
SEEKS = [
    "mentoring",
    "volunteer work",
    "job leads",
    "grant writing",
    "web development",
    "photography",
    "board service",
    "event planning",
]


def load_demo(ctx: Context, email: str, password: str) -> str:
    existing = organizations.find_by_slug(ctx, organizations.slugify(DEMO_ORG))
    if existing is not None:
        return f"demo data already present ({DEMO_ORG})"
    org = organizations.create_organization(ctx, DEMO_ORG, email, "Dana Organizer", password)
    org_id = org["_id"]
    rng = random.Random(2026)
    people = []
    for i, first in enumerate(FIRST):
        last = LAST[(i * 7) % len(LAST)]
        people.append((first, last, f"{fold_name(first)}.{fold_name(last)}@example.org"))
    now = utcnow()
    kinds = ["volunteer_shift", "networking", "volunteer_shift", "workshop", "networking", "volunteer_shift"]
    titles = [
        "Saturday sorting shift",
        "Neighbours networking evening",
        "Weekday delivery shift",
        "Grant writing workshop",
        "Spring supporters mixer",
        "Harvest sorting shift",
    ]
    # Six past events over the last four months, each with registrations,
    # attendance (regulars come more often) and a few no-shows.
    for index, (kind, title) in enumerate(zip(kinds, titles, strict=True)):
        starts = (now - timedelta(days=120 - index * 20)).replace(hour=17, minute=0, second=0, microsecond=0)
        event = events.schedule_event(
            ctx,
            org_id,
            title=title,
            kind=kind,
            starts_at=starts,
            ends_at=starts + timedelta(hours=3),
            timezone="America/Chicago",
            venue="Riverside Community Hall",
            capacity=60,
        )
        attendees = rng.sample(people, rng.randint(14, 22))
        for first, last, mail in attendees:
            registration, _ = registrations.register(
                ctx,
                org_id,
                event["_id"],
                first_name=first,
                last_name=last,
                email=mail,
                consent_email=rng.random() < 0.85,
                offers=rng.sample(OFFERS, rng.randint(0, 2)),
                seeks=rng.sample(SEEKS, rng.randint(0, 2)),
            )
            if rng.random() < 0.78:
                arrival = starts + timedelta(minutes=rng.randint(-20, 45), seconds=rng.randint(0, 59))
                checkins.record_checkin(
                    ctx,
                    checkins.CheckinCommand(
                        org_id=org_id,
                        event_id=event["_id"],
                        client_key=f"demo-{registration['_id']}",
                        method=rng.choice(["qr", "qr", "qr", "search"]),
                        registration_id=registration["_id"],
                        kiosk_id=None,
                        scanned_at=arrival,
                        override=True,
                        recorded_at=arrival,
                    ),
                )
        events.end_event(ctx, org_id, event["_id"], "schedule", now=starts + timedelta(hours=3))
    # Happening now: the door is open, half the people registered.
    starts = now - timedelta(minutes=30)
    tonight = events.schedule_event(
        ctx,
        org_id,
        title="Community supper volunteer shift",
        kind="volunteer_shift",
        starts_at=starts,
        ends_at=starts + timedelta(hours=4),
        timezone="America/Chicago",
        venue="Riverside Community Hall",
        capacity=40,
    )
    for first, last, mail in people[:24]:
        registrations.register(
            ctx,
            org_id,
            tonight["_id"],
            first_name=first,
            last_name=last,
            email=mail,
            consent_email=True,
            offers=rng.sample(OFFERS, 1),
            seeks=rng.sample(SEEKS, 1),
        )
    # Upcoming, with registrations.
    upcoming_start = (now + timedelta(days=9)).replace(hour=18, minute=0, second=0, microsecond=0)
    upcoming = events.schedule_event(
        ctx,
        org_id,
        title="Volunteer appreciation evening",
        kind="networking",
        starts_at=upcoming_start,
        ends_at=upcoming_start + timedelta(hours=2),
        timezone="America/Chicago",
        venue="Riverside Community Hall",
        capacity=80,
    )
    for first, last, mail in people[5:25]:
        registrations.register(
            ctx, org_id, upcoming["_id"], first_name=first, last_name=last, email=mail, consent_email=True
        )
    return f"demo data loaded: {DEMO_ORG}, 8 events"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m checkin.entrypoints.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-org", help="create an organization and its owner")
    create.add_argument("--name", required=True)
    create.add_argument("--owner-email", required=True)
    create.add_argument("--owner-name", required=True)
    demo = sub.add_parser("load-demo", help="load demo data (idempotent)")
    demo.add_argument("--email", required=True)
    demo.add_argument("--password", required=True)
    args = parser.parse_args(argv)
    ctx = build_context(Settings.from_env(), "turnout-checkin-cli")
    try:
        if args.command == "create-org":
            password = getpass.getpass("Owner password (10+ characters): ")
            org = organizations.create_organization(ctx, args.name, args.owner_email, args.owner_name, password)
            print(f"created organization {org['name']} ({org['_id']}); owner {args.owner_email}")
        else:
            print(load_demo(ctx, args.email, args.password))
    except RuleBroken as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    finally:
        ctx.client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
