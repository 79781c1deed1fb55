"""Win-back drafts on the real database, through the organizer API and page, to a real
SMTP server: nothing goes out before approval, a bulk approval sends each note once,
never to a person who withdrew meanwhile, and a later check-in counts as came back."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from followup import create_app
from followup.adapters.mongo import NUDGES
from followup.config import Settings
from followup.service_layer import tracking
from followup.service_layer.context import Services
from followup.service_layer.scheduling import scan_win_back
from followup.service_layer.sending import send_due_nudges
from tests.followup.helpers import Gathering, SmtpServer
from tests.followup.integration.conftest import apply
from tests.followup.integration.test_api import auth
from turnout_common.envelope import Envelope
from turnout_common.outbox import OUTBOX

pytestmark = pytest.mark.integration


@pytest.fixture
def client(settings: Settings, svc: Services) -> Iterator[FlaskClient]:
    with create_app(settings).test_client() as test_client:
        yield test_client


def shifts(org_id: str, people: dict[str, str]) -> list[Envelope]:
    """Three weekly food bank shifts, ten weeks ago and before, that everyone came to."""
    messages: list[Envelope] = []
    first = datetime.now(UTC) - timedelta(weeks=12)
    for week in range(3):
        g = Gathering(org_id, kind="volunteer_shift", title="Food bank shift", starts_at=first + timedelta(weeks=week))
        messages.append(g.scheduled(status="ended"))
        for person, name in people.items():
            messages += [g.registered(person, name, f"{name.lower()}@example.org"), g.checked_in(person)]
    return messages


def test_drafts_wait_for_approval_then_go_out_once(
    svc: Services, smtp: SmtpServer, org_id: str, client: FlaskClient
) -> None:
    apply(svc, shifts(org_id, {"p-jo": "Jo", "p-al": "Al", "p-cy": "Cy"}))
    assert scan_win_back(svc, datetime.now(UTC), force=True) == 3
    organizer = auth(org_id)

    # Drafted, not sent, not announced.
    assert send_due_nudges(svc).sent == 0
    assert smtp.handler.received == []
    assert svc.db[OUTBOX].count_documents({"type": "followup.scheduled"}) == 0
    listing = client.get("/api/v1/winback", headers=organizer).get_json()
    assert listing["mode"] == "approval" and len(listing["drafts"]) == 3
    drafts = {d["name"].split()[0]: d for d in listing["drafts"]}
    assert drafts["Jo"]["body"].startswith("We've missed you at the ")  # "the Tuesday food bank shifts since …"
    assert "food bank shifts since" in drafts["Jo"]["body"]
    assert drafts["Jo"]["why"]["visits"] == 3
    page = client.get("/winback", headers=organizer)
    assert page.status_code == 200 and page.get_data(as_text=True).count('name="ids"') == 3

    # Jo's note edited on the page; Cy unsubscribes (from an earlier email) before the approval.
    edited = client.post(
        "/winback",
        data={
            "action": f"save:{drafts['Jo']['id']}",
            f"subject-{drafts['Jo']['id']}": "Come back, Jo",
            f"body-{drafts['Jo']['id']}": drafts["Jo"]["body"] + "\n\nAnn from the pantry",
        },
        headers=organizer,
    )
    assert edited.status_code == 303
    tracking.unsubscribe(svc, drafts["Cy"]["id"], "link")
    bad = client.patch(f"/api/v1/winback/{drafts['Al']['id']}", json={"subject": "", "body": "x"}, headers=organizer)
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "subject"

    approved = client.post(
        "/api/v1/winback/approvals", json={"ids": [d["id"] for d in drafts.values()]}, headers=organizer
    )
    assert approved.status_code == 200 and len(approved.get_json()["approved"]) == 3
    again = client.post(f"/api/v1/winback/{drafts['Jo']['id']}/approval", headers=organizer)
    assert again.status_code == 409 and "no longer a draft" in again.get_json()["error"]["message"]
    send_due_nudges(svc)
    send_due_nudges(svc)
    assert Counter(item.to for item in smtp.handler.received) == {"jo@example.org": 1, "al@example.org": 1}
    jo_mail = next(item.message for item in smtp.handler.received if item.to == "jo@example.org")
    assert jo_mail["Subject"] == "Come back, Jo"
    assert jo_mail["List-Unsubscribe"].startswith("<https://followup.example.org/u/")
    assert "Ann from the pantry" in jo_mail.get_body(("plain",)).get_content()
    cy = svc.db[NUDGES].find_one({"_id": drafts["Cy"]["id"]})
    assert cy is not None and (cy["state"], cy["skip_reason"]) == ("skipped", "unsubscribed")
    jo = svc.db[NUDGES].find_one({"_id": drafts["Jo"]["id"]})
    assert jo is not None and jo["approved_by"] == "user:u-organizer Someone"

    # Jo comes to the next shift: the funnel counts her as came back.
    back = Gathering(org_id, kind="volunteer_shift", title="Food bank shift", starts_at=datetime.now(UTC))
    apply(svc, [back.scheduled(), back.registered("p-jo", "Jo", "jo@example.org"), back.checked_in("p-jo")])
    funnel = client.get("/api/v1/winback", headers=organizer).get_json()["funnel"]
    assert funnel == {"drafted": 3, "approved": 3, "sent": 2, "came_back": 1, "waiting": 0, "discarded": 0}
    assert client.post("/api/v1/winback/approvals", json={"ids": []}, headers=organizer).status_code == 400
