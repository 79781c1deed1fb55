"""Every service recognises a person's address by the same key.

Correction and erasure travel between services by that key, so a drift (as
when checkin case-folded and followup lower-cased, and "Straße" got two
keys) would leave a person's data behind in one of them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from checkin.service_layer.registrations import new_person_doc
from followup.domain.contacts import contact_from_registration
from followup.domain.suppression import suppression_id
from turnout_common.emails import normalize_email

TRICKY = [
    "Ada.Lovelace@Example.ORG",
    "  spaced@example.org\t",
    "Straße@Beispiel.de",
    "STRASSE@beispiel.de",
    "\u0130stanbul@example.com.tr",  # dotted capital I
    "jose\u0301@example.org",  # e + combining acute
    "jos\u00e9@example.org",  # precomposed é
    "ΣΊΣΥΦΟΣ@example.gr",
]


def _checkin_key(address: str) -> str:
    return str(new_person_doc("org", address, "A", "B", datetime.now(UTC))["email_norm"])


def _followup_key(address: str) -> str:
    data = {"org_id": "org", "email": address, "first_name": "A", "last_name": "B"}
    return str(contact_from_registration(data)["email_norm"])


@pytest.mark.parametrize("address", TRICKY)
def test_checkin_and_followup_derive_the_same_key(address: str) -> None:
    key = normalize_email(address)
    assert _checkin_key(address) == key
    assert _followup_key(address) == key
    assert suppression_id("org", address) == f"org:{key}"


def test_the_key_separates_and_joins_what_it_should() -> None:
    keys = {address: _checkin_key(address) for address in TRICKY}
    assert keys["Straße@Beispiel.de"] != keys["STRASSE@beispiel.de"]
    assert keys["jose\u0301@example.org"] == keys["jos\u00e9@example.org"]
    assert keys["  spaced@example.org\t"] == "spaced@example.org"


def test_no_service_derives_an_email_key_of_its_own() -> None:
    root = Path(__file__).resolve().parents[2] / "services"
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for line_no, line in enumerate(text.splitlines(), 1):
            if "email" in line and (".casefold()" in line or ".lower()" in line):
                pytest.fail(f"{path.relative_to(root)}:{line_no} derives an email key itself: {line.strip()}")
