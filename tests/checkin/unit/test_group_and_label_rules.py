"""The door's pure rules for groups (who comes in with whom) and name labels."""

from __future__ import annotations

from typing import Any

import pytest

from checkin.domain import admission, labels


def reg(rid: str, first: str, *, party: str | None = "4401", status: str = "registered", **more: Any) -> dict[str, Any]:
    doc = {"_id": rid, "org_id": "o", "event_id": "e", "first_name": first, "last_name": "Smith", "status": status}
    if party is not None:
        doc["party"] = party
    return {**doc, **more}


def test_a_group_is_the_rest_of_the_party_at_the_event_without_the_cancelled() -> None:
    leader = reg("1", "Ada")
    everyone = [
        leader,
        reg("2", "zoe"),
        reg("3", "Bob", status="waitlisted"),
        reg("4", "Cy", status="cancelled"),
        reg("5", "Dee", party="4402"),
        reg("6", "Eve", party=None),
        {**reg("7", "Fay"), "event_id": "other"},
        reg("8", "Gus", checkin={"received_at": 1}),
    ]
    members = admission.group_members(leader, everyone)
    assert [m["first_name"] for m in members] == ["Bob", "Gus", "zoe"]
    views = [admission.group_member_view(m) for m in members]
    assert views[0] == {
        "registration_id": "3",
        "name": "Bob S.",
        "first_name": "Bob",
        "checked_in": False,
        "waitlisted": True,
    }
    assert views[1]["checked_in"] is True
    assert admission.group_members(reg("6", "Eve", party=None), everyone) == []


def test_only_a_registered_member_of_the_same_party_comes_in_with_the_group() -> None:
    leader = reg("1", "Ada")
    assert admission.group_refusal(reg("2", "Bob"), leader) is None
    waitlisted = admission.group_refusal(reg("3", "Cy", status="waitlisted"), leader)
    assert waitlisted is not None and waitlisted.code == "waitlisted_in_group" and "Cy S." in waitlisted.message
    for member, other in [
        (reg("2", "Bob", party="4402"), leader),
        (reg("2", "Bob"), None),
        (reg("2", "Bob"), {**leader, "event_id": "other"}),
        (reg("2", "Bob", party=None), reg("1", "Ada", party=None)),
    ]:
        refusal = admission.group_refusal(member, other)
        assert refusal is not None and refusal.code == "not_in_group"


def test_a_label_shows_tags_only_on_networking_evenings() -> None:
    person = reg("1", "Ada", offers=["python", "sql", "go", "rust"], seeks=["a job"])
    networking = labels.name_label(person, {"kind": "networking", "title": "Mixer"}, first_time=True)
    assert networking == {
        "first_name": "Ada",
        "last_name": "Smith",
        "offers": ["python", "sql", "go"],
        "seeks": ["a job"],
        "first_time": True,
        "event_title": "Mixer",
    }
    shift = labels.name_label(person, {"kind": "volunteer_shift", "title": "Pantry"}, first_time=False)
    assert shift["offers"] == [] and shift["seeks"] == [] and shift["first_time"] is False
    assert labels.labels_on({"name_labels": True}) and not labels.labels_on({})


def test_label_sizes() -> None:
    assert labels.label_size(None) == labels.label_size("") == "62mm"
    assert labels.label_size("4x3in") == "4x3in"
    with pytest.raises(ValueError, match="62mm, 4x3in"):
        labels.label_size("A4")
