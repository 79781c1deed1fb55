"""Name-only registrations on the real SecantusDB: a Meetup RSVP export without any email
column imports every "Yes" row by name, Waitlist rows join the waitlist in the file's order,
the kiosk finds and checks them in, and a name-only person can give an address at the kiosk."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import Org, create_event, headers, registered
from tests.checkin.integration.test_imports import queued, report, run_imports
from tests.checkin.integration.test_kiosks import paired
from turnout_common.envelope import Envelope

pytestmark = pytest.mark.integration

MEETUP = (Path(__file__).resolve().parents[2] / "fixtures" / "imports" / "meetup_rsvps_no_email.csv").read_bytes()
YES = {
    "Amara": "Okafor",
    "Cher": "",
    "José": "Álvarez",
    "Li": "Wei",  # no User ID: matched by the profile URL's member id
}
WAITLIST = ["Sam", "Ana", "Ben"]  # in the file's order


def outbox(ctx: Any, event_type: str) -> list[Envelope]:
    docs = ctx.db["outbox"].find({"type": event_type}).sort([("created_at", 1), ("seq", 1)])
    return [Envelope.from_json(bytes(doc["payload"])) for doc in docs]


def give_email(client: FlaskClient, token: str, registration_id: str, **body: Any) -> Any:
    return client.post(f"/api/v1/kiosk/registrations/{registration_id}/email", json=body, headers=headers(token))


def test_a_meetup_roster_without_emails_is_imported_by_name_and_checked_in_at_the_kiosk(
    client: FlaskClient, org: Org, ctx: Any
) -> None:
    event = create_event(client, org.token, capacity=20)
    job = queued(client, org.token, event["id"], MEETUP, filename="Meetup RSVPs.csv")
    assert (job["format"], job["to_register"], job["to_register_name_only"]) == ("meetup", 9, 9)
    run_imports(ctx)
    done = report(client, org.token, job["id"])
    # Six Yes rows (two different John Smiths), three Waitlist rows; Tom said No.
    assert (done["created"], done["failed"], done["skipped"]) == (9, 0, 1)
    assert (done["name_only"], done["waitlisted"]) == (9, 3)
    assert done["errors"] == [] and done["skipped_rows"] == [{"row": 5, "reason": "skipped: RSVP is 'No'"}]

    regs = list(ctx.db["registrations"].find({"event_id": event["id"]}))
    people = {p["_id"]: p for p in ctx.db["people"].find({"_id": {"$in": [r["person_id"] for r in regs]}})}
    assert len(people) == 9  # the two John Smiths are two people: never merged on the name
    assert all(p["email"] is None and not p["email_norm"].count("@") for p in people.values())
    assert sorted(p["meetup_member_id"] for p in people.values()) == [
        f"30110000{n}" for n in (1, 2, 3, 5, 6, 7, 8, 9)
    ] + ["301100010"]
    assert all(r["email_hint"] is None and r["consent_email"] is False for r in regs)
    assert [r["first_name"] for r in sorted(regs, key=lambda r: r["_id"]) if r["status"] == "waitlisted"] == WAITLIST
    registered_msgs = [m for m in outbox(ctx, "attendee.registered") if m.data["event_id"] == event["id"]]
    assert len(registered_msgs) == 9 and all(m.data["email"] is None for m in registered_msgs)

    # The kiosk finds every Yes row by name (no email hint to break) and checks them in.
    token, _ = paired(client, org, event["id"])
    roster = client.get("/api/v1/kiosk/roster", headers=headers(token)).get_json()["people"]
    assert len(roster) == 9 and all(entry["has_email"] is False for entry in roster)
    ids: dict[str, str] = {}
    for first, last in YES.items():
        (found,) = client.get(f"/api/v1/kiosk/search?q={first}", headers=headers(token)).get_json()["results"]
        assert found["name"] == (f"{first} {last[0]}." if last else first) and found["has_email"] is False
        answer = client.post(
            "/api/v1/kiosk/checkins",
            json={"client_key": f"key-{found['registration_id']}", "registration_id": found["registration_id"]},
            headers=headers(token),
        )
        assert answer.status_code == 201, answer.get_json()
        ids[first] = found["registration_id"]
    smiths = client.get("/api/v1/kiosk/search?q=john smith", headers=headers(token)).get_json()["results"]
    assert len(smiths) == 2 and smiths[0]["hint"] != smiths[1]["hint"]
    for smith in smiths:
        key = f"key-{smith['registration_id']}"
        body = {"client_key": key, "registration_id": smith["registration_id"]}
        assert client.post("/api/v1/kiosk/checkins", json=body, headers=headers(token)).status_code == 201
    # The organizer's search and badges read them without an email.
    search = client.get(f"/api/v1/events/{event['id']}/registrations/search?q=amara", headers=headers(org.token))
    assert search.status_code == 200 and search.get_json()["results"][0]["email"] == ""
    assert client.get(f"/api/v1/registrations/{ids['Cher']}/badge.svg", headers=headers(org.token)).status_code == 200

    # A re-import of the same file creates nobody: the members are matched by their ids.
    again = queued(client, org.token, event["id"], MEETUP, filename="Meetup RSVPs.csv")
    run_imports(ctx)
    second = report(client, org.token, again["id"])
    assert (second["created"], second["already_registered"], second["name_only"]) == (0, 9, 9)
    assert ctx.db["people"].count_documents({"org_id": org.id}) == 9


def test_a_name_only_person_gives_an_address_at_the_kiosk_once(client: FlaskClient, org: Org, ctx: Any) -> None:
    event = create_event(client, org.token)
    job = queued(client, org.token, event["id"], MEETUP, filename="Meetup RSVPs.csv")
    run_imports(ctx)
    assert report(client, org.token, job["id"])["name_only"] == 9
    registered(client, org.token, event["id"], "bob@example.org", first_name="Bob")
    token, _ = paired(client, org, event["id"])
    regs = {r["first_name"]: r for r in ctx.db["registrations"].find({"event_id": event["id"]})}
    amara, cher, sam = regs["Amara"]["_id"], regs["Cher"]["_id"], regs["Sam"]["_id"]

    # Not checked in yet: refused; then checked in.
    assert give_email(client, token, amara, email="amara@example.org").get_json()["error"]["code"] == "not_checked_in"
    for rid in (amara, cher):
        body = {"client_key": f"key-{rid}", "registration_id": rid}
        assert client.post("/api/v1/kiosk/checkins", json=body, headers=headers(token)).status_code == 201

    bad = give_email(client, token, amara, email="amara at example")
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "email"
    taken = give_email(client, token, amara, email="BOB@example.org")
    assert taken.status_code == 409 and taken.get_json()["error"]["code"] == "email_taken"
    assert give_email(client, token, "no-such-registration", email="x@example.org").status_code == 404
    assert give_email(client, token, sam, email="sam@example.org").status_code == 409  # waitlisted, not in

    # The box left unticked: an address, no consent.
    saved = give_email(client, token, amara, email="amara@example.org")
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json() == {"registration_id": amara, "has_email": True, "consent_email": False}
    person = ctx.db["people"].find_one({"_id": regs["Amara"]["person_id"]})
    assert (person["email"], person["email_norm"], person["meetup_member_id"]) == (
        "amara@example.org",
        "amara@example.org",
        "301100001",
    )
    assert ctx.db["registrations"].find_one({"_id": amara})["email_hint"] == "a…a@e…"
    # Asked once: a second answer is refused (an organizer corrects an address on the person's page).
    again = give_email(client, token, amara, email="other@example.org")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "email_already_set"

    # Ticked: the registration records consent and person.updated carries it.
    ticked = give_email(client, token, cher, email="cher@example.org", consent_email=True)
    assert ticked.get_json()["consent_email"] is True
    assert ctx.db["registrations"].find_one({"_id": cher})["consent_email"] is True
    updates = {m.data["person_id"]: m.data for m in outbox(ctx, "person.updated")}
    assert updates[regs["Amara"]["person_id"]]["consent_email"] is False
    cher_update = updates[regs["Cher"]["person_id"]]
    assert (cher_update["email"], cher_update["consent_email"], cher_update["registration_id"]) == (
        "cher@example.org",
        True,
        cher,
    )
    roster = client.get("/api/v1/kiosk/roster", headers=headers(token)).get_json()["people"]
    assert {e["first_name"] for e in roster if e["has_email"]} == {"Amara", "Cher", "Bob"}
    # A re-import still matches Amara (now with an address) by her member id: nobody new.
    queued(client, org.token, event["id"], MEETUP, filename="Meetup RSVPs.csv")
    run_imports(ctx)
    assert ctx.db["people"].count_documents({"org_id": org.id}) == 10


def test_waitlist_rows_are_promoted_in_the_files_order(client: FlaskClient, org: Org, ctx: Any) -> None:
    event = create_event(client, org.token, capacity=6)
    queued(client, org.token, event["id"], MEETUP)
    run_imports(ctx)
    regs = {r["first_name"]: r for r in ctx.db["registrations"].find({"event_id": event["id"]})}
    promoted = []
    for first in ("Amara", "Cher", "Li"):
        answer = client.post(f"/api/v1/registrations/{regs[first]['_id']}/cancel", json={}, headers=headers(org.token))
        assert answer.status_code == 200, answer.get_json()
        promoted.append(answer.get_json()["promoted_from_waitlist"]["first_name"])
    assert promoted == WAITLIST


def test_name_only_rows_without_member_ids_are_never_merged_on_the_name(
    client: FlaskClient, org: Org, ctx: Any
) -> None:
    event = create_event(client, org.token)
    raw = b"Name;Household\nDora Marsh;A\nDora Marsh;B\n"
    job = queued(client, org.token, event["id"], raw, mapping={"name": "Name", "party": "Household"})
    run_imports(ctx)
    assert (report(client, org.token, job["id"])["created"], ctx.db["people"].count_documents({"org_id": org.id})) == (
        2,
        2,
    )
    # The people indexes: one person per address (name-only people hold a "~" key, so the unique
    # index stays whole for the scans that page people by it); Meetup member ids sparse.
    indexes = ctx.db["people"].index_information()
    assert indexes["org_id_1_email_norm_1"].get("unique") is True
    assert "partialFilterExpression" not in indexes["org_id_1_email_norm_1"]
    assert indexes["meetup_member_id_1"].get("sparse") is True
    keys = sorted(p["email_norm"] for p in ctx.db["people"].find({"org_id": org.id}))
    assert len(set(keys)) == 2 and all(key.startswith("~") for key in keys)


def test_an_organizer_corrects_a_name_only_persons_name_without_inventing_an_address(
    app: Any, client: FlaskClient, org: Org, ctx: Any
) -> None:
    from tests.checkin.integration.test_pages import browser, text_of

    event = create_event(client, org.token)
    queued(client, org.token, event["id"], MEETUP)
    run_imports(ctx)
    cher = ctx.db["people"].find_one({"org_id": org.id, "first_name": "Cher"})
    page = browser(app, org.owner_email)
    listing = text_of(page.get("/people?q=cher"))
    assert "Cher" in listing and "None" not in listing and "name only" in listing
    html = page.get(f"/people/{cher['_id']}").get_data(as_text=True)
    assert "None" not in html and "no email (registered by name only)" in html
    # The form's email field is empty and optional: the page sends only the changed name.
    assert re.search(r'<input id="f-email"[^>]*value=""', html) and "required" not in html.split('id="f-email"')[1][:80]
    answer = client.patch(f"/api/v1/people/{cher['_id']}", json={"last_name": "Sarkisian"}, headers=headers(org.token))
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["email"] is None
    (update,) = outbox(ctx, "person.updated")
    assert (update.data["last_name"], update.data["email"]) == ("Sarkisian", None)
