"""Badges: QR codes (SVG, PNG), the printable badge pages, and the door refusing
forged, foreign and cancelled badges with a message a person understands."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import Org, check_in, create_event, headers, new_org, registered
from tests.checkin.integration.test_pages import browser, text_of

pytestmark = pytest.mark.integration

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def badges_api(app: Flask) -> Iterator[None]:
    """Register the api_badges blueprint if create_app doesn't yet."""
    from checkin.entrypoints import api_badges

    if "api_badges" not in app.blueprints:
        api_badges.init_app(app)
    yield


@pytest.fixture
def two(client: FlaskClient, org: Org) -> dict[str, Any]:
    event = create_event(client, org.token, title="Badge night", venue="Hall B")
    ada = registered(client, org.token, event["id"], "ada@example.org")
    bo = registered(client, org.token, event["id"], "bo@example.org", first_name="Bo", last_name="Diddley")
    return {"event": event, "ada": ada, "bo": bo}


def _decode(png: bytes, tmp_path: Path) -> str | None:
    """The QR code's text, when zbarimg is installed (segno only encodes)."""
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        return None
    image = tmp_path / "badge.png"
    image.write_bytes(png)
    result = subprocess.run([zbarimg, "--quiet", "--raw", str(image)], capture_output=True, text=True, timeout=20)
    return result.stdout.strip()


# -- QR code images ------------------------------------------------------------------------------------


def test_badge_svg_is_a_qr_code_of_the_badge_code_only(client: FlaskClient, org: Org, two: dict[str, Any]) -> None:
    from checkin.service_layer import badges

    ada, bo = two["ada"], two["bo"]
    response = client.get(f"/api/v1/registrations/{ada['id']}/badge.svg", headers=headers(org.token))
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert "private" in response.headers["Cache-Control"]
    svg = response.get_data(as_text=True)
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and 'xmlns="http://www.w3.org/2000/svg"' in svg
    assert re.search(r"<path[^>]+d=\"M", svg)
    # Exactly the QR code of the badge code: not of the id, the name or a URL.
    assert response.data == badges.badge_svg(ada["badge_code"])
    assert response.data != badges.badge_svg(ada["id"])
    other = client.get(f"/api/v1/registrations/{bo['id']}/badge.svg", headers=headers(org.token))
    assert other.status_code == 200 and other.data != response.data
    bigger = client.get(f"/api/v1/registrations/{ada['id']}/badge.svg?scale=20", headers=headers(org.token))
    width = badges.qr_code(ada["badge_code"]).symbol_size(scale=20, border=4)[0]
    assert bigger.status_code == 200 and f'width="{width}"' in bigger.get_data(as_text=True)


def test_badge_png_is_a_png_that_decodes_to_the_badge_code(
    client: FlaskClient, org: Org, two: dict[str, Any], tmp_path: Path
) -> None:
    ada = two["ada"]
    response = client.get(f"/api/v1/registrations/{ada['id']}/badge.png", headers=headers(org.token))
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.data.startswith(PNG_MAGIC)
    decoded = _decode(response.data, tmp_path)
    if decoded is not None:
        assert decoded == ada["badge_code"]
    other = client.get(f"/api/v1/registrations/{two['bo']['id']}/badge.png", headers=headers(org.token))
    assert other.data.startswith(PNG_MAGIC) and other.data != response.data


def test_badge_images_are_scoped_to_the_organization(
    app: Flask, client: FlaskClient, org: Org, two: dict[str, Any]
) -> None:
    other = new_org(app, client, "Other")
    for kind in ("svg", "png"):
        path = f"/api/v1/registrations/{two['ada']['id']}/badge.{kind}"
        refused = client.get(path, headers=headers(other.token))
        assert refused.status_code == 404
        assert refused.get_json()["error"]["code"] == "registration_not_found"
        assert client.get(path).status_code == 401
        assert client.get(f"/api/v1/registrations/nope/badge.{kind}", headers=headers(org.token)).status_code == 404


@pytest.mark.parametrize("scale", ["0", "41", "big", "-3"])
def test_bad_badge_scales_are_400(client: FlaskClient, org: Org, two: dict[str, Any], scale: str) -> None:
    response = client.get(
        f"/api/v1/registrations/{two['ada']['id']}/badge.png?scale={scale}", headers=headers(org.token)
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "scale"


# -- the door refuses badges it must not take -------------------------------------------------------------


def _refused(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    assert error["code"] == code
    assert "front desk" in error["message"]  # tells the person what to do
    return str(error["message"])


def test_a_forged_badge_is_404_unknown_badge(client: FlaskClient, org: Org, two: dict[str, Any]) -> None:
    forged = uuid.uuid4().hex[:22]
    message = _refused(check_in(client, org.token, two["event"]["id"], badge_code=forged), 404, "unknown_badge")
    assert "don't recognise this badge" in message


def test_another_event_s_badge_is_409_wrong_event(client: FlaskClient, org: Org, two: dict[str, Any]) -> None:
    tonight = create_event(client, org.token, title="Another night")
    answer = check_in(client, org.token, tonight["id"], badge_code=two["ada"]["badge_code"])
    assert "different event" in _refused(answer, 409, "wrong_event")


def test_another_organization_s_badge_is_unknown(
    app: Flask, client: FlaskClient, org: Org, two: dict[str, Any]
) -> None:
    other = new_org(app, client, "Elsewhere")
    theirs = create_event(client, other.token)
    _refused(check_in(client, other.token, theirs["id"], badge_code=two["ada"]["badge_code"]), 404, "unknown_badge")


def test_a_cancelled_registration_s_badge_is_409(
    app: Flask, client: FlaskClient, org: Org, two: dict[str, Any]
) -> None:
    app.extensions["checkin"].db["registrations"].update_one(
        {"_id": two["bo"]["id"]}, {"$set": {"status": "cancelled"}}
    )
    answer = check_in(client, org.token, two["event"]["id"], badge_code=two["bo"]["badge_code"])
    assert "cancelled" in _refused(answer, 409, "registration_cancelled")
    # The valid badge next to it still works.
    assert check_in(client, org.token, two["event"]["id"], badge_code=two["ada"]["badge_code"]).status_code == 201


# -- printable pages -----------------------------------------------------------------------------------


def test_badge_page_prints_name_event_local_time_venue_and_qr(app: Flask, org: Org, two: dict[str, Any]) -> None:
    from checkin.service_layer import badges

    ctx = app.extensions["checkin"]
    event = ctx.db["events"].find_one({"_id": two["event"]["id"]})
    response = browser(app, org.owner_email).get(f"/badges/{two['bo']['id']}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    page = text_of(response)
    assert '<span class="badge-first ">Bo</span>' in html and "Diddley" in page
    assert "Badge night" in page and "Hall B" in page
    day, times = badges.when_lines(event["starts_at"], event["ends_at"], "America/Chicago")
    assert f"{day} {times}" in page and times.endswith((" CST", " CDT"))  # in the event's zone
    assert f'<span class="nowrap">{times}</span>' in html
    assert "css/badges.css" in html and "css/badge-page.css" in html  # one 4in x 3in badge per printed page
    css = app.test_client().get("/static/css/badge-page.css")
    assert css.status_code == 200 and "@page { size: 4in 3in; margin: 0; }" in css.get_data(as_text=True)
    qr = html.split('class="badge-qr"', 1)[1]
    assert qr.split(">", 1)[1].lstrip().startswith("<svg") and badges.badge_svg_inline(two["bo"]["badge_code"]) in qr
    org_name = ctx.db["organizations"].find_one({"_id": org.id})["name"]
    assert org_name.upper() in page.upper()


def test_badge_page_warns_about_cancelled_and_waitlisted(app: Flask, client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token, capacity=1)
    registered(client, org.token, event["id"], "first@example.org")
    late = registered(client, org.token, event["id"], "late@example.org", first_name="Late")
    assert late["status"] == "waitlisted"
    signed_in = browser(app, org.owner_email)
    assert "on the waitlist" in text_of(signed_in.get(f"/badges/{late['id']}"))
    app.extensions["checkin"].db["registrations"].update_one({"_id": late["id"]}, {"$set": {"status": "cancelled"}})
    assert "the door will refuse this badge" in text_of(signed_in.get(f"/badges/{late['id']}"))


def test_event_badges_sheet_paginates_and_skips_cancelled(app: Flask, client: FlaskClient, org: Org) -> None:
    from checkin.service_layer import registrations

    ctx = app.extensions["checkin"]
    event = create_event(client, org.token, title="Huge gathering")
    for index in range(50):
        registrations.register(
            ctx,
            org.id,
            event["id"],
            first_name=f"Guest{index:02d}",
            last_name=f"L{index:02d}",
            email=f"g{index}@example.org",
            consent_email=True,
        )
    ctx.db["registrations"].update_one(
        {"event_id": event["id"], "first_name": "Guest07"}, {"$set": {"status": "cancelled"}}
    )
    signed_in = browser(app, org.owner_email)
    first = signed_in.get(f"/events/{event['id']}/badges")
    assert first.status_code == 200
    html, page = first.get_data(as_text=True), text_of(first)
    assert "Badges 1–48 of 49" in page and "Print 48 badges" in page and "Page 1 of 2" in page
    assert html.count('class="sheet"') == 8 and html.count('<article class="badge"') == 48
    assert "Guest00" in page and "Guest07" not in page and "Guest49" not in page
    assert "css/badge-sheets.css" in html
    css = app.test_client().get("/static/css/badge-sheets.css")
    assert css.status_code == 200 and "@page { margin: 0.2in; }" in css.get_data(as_text=True)
    second = signed_in.get(f"/events/{event['id']}/badges?page=2")
    assert second.get_data(as_text=True).count('<article class="badge"') == 1 and "Guest49" in text_of(second)
    assert "No badges on this page" in text_of(signed_in.get(f"/events/{event['id']}/badges?page=5"))
    for bad in ("0", "x", "-1"):
        assert signed_in.get(f"/events/{event['id']}/badges?page={bad}").status_code == 400


def test_badges_sheet_of_an_empty_event(app: Flask, client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    page = text_of(browser(app, org.owner_email).get(f"/events/{event['id']}/badges"))
    assert "Nobody to print a badge for yet" in page and "Print" not in page.split("Nobody", 1)[1]


def test_viewers_may_print_badges_of_their_own_organization_only(
    app: Flask, client: FlaskClient, org: Org, two: dict[str, Any]
) -> None:
    from tests.checkin.integration.test_pages import add_user

    viewer = browser(app, add_user(app, org.id, "viewer"))
    assert viewer.get(f"/badges/{two['ada']['id']}").status_code == 200
    assert viewer.get(f"/events/{two['event']['id']}/badges").status_code == 200
    other = browser(app, new_org(app, client, "Far").owner_email)
    assert other.get(f"/badges/{two['ada']['id']}").status_code == 404
    assert other.get(f"/events/{two['event']['id']}/badges").status_code == 404
    assert app.test_client().get(f"/badges/{two['ada']['id']}").status_code == 302
