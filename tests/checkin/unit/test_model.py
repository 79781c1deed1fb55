"""Check-in domain rules (pure functions, no servers)."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from checkin.domain.model import (
    EventStatus,
    RuleBroken,
    check_door_open,
    check_timezone,
    display_name,
    fold_name,
    new_badge_code,
    normalize_tags,
    plan_schedule,
    registration_status,
    volunteer_hours,
)
from turnout_common.emails import normalize_email

T0 = datetime(2026, 5, 1, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ada@Example.ORG", "ada@example.org"),
        ("  ada@example.org\t\n", "ada@example.org"),
        ("STRASSE@ex.de", "strasse@ex.de"),
        # The shared key lower-cases (never case-folds): "ß" stays, as in followup and analytics.
        ("Straße@Ex.de", "straße@ex.de"),
    ],
)
def test_normalize_email(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


def test_same_person_whatever_the_case_or_spacing() -> None:
    assert normalize_email(" Ada.Lovelace@Example.org ") == normalize_email("ada.lovelace@EXAMPLE.ORG")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("José", "jose"),
        ("  Zoë Ångström ", "zoe angstrom"),
        ("FRANÇOIS", "francois"),
        ("Łukasz", "łukasz"),  # a letter of its own, not an accent: kept
        ("Straße", "strasse"),
    ],
)
def test_fold_name_ignores_accents_and_case(raw: str, expected: str) -> None:
    assert fold_name(raw) == expected


def test_fold_name_matches_composed_and_decomposed_forms() -> None:
    assert fold_name("Jos\u00e9") == fold_name("Jose\u0301") == "jose"


@pytest.mark.parametrize(
    ("first", "last", "shown"),
    [
        ("Ada", "Lovelace", "Ada L."),
        ("ada", "lovelace", "ada L."),
        ("  Ada ", "  Lovelace", "Ada L."),
        ("Ada", "", "Ada"),
        ("Ada", "   ", "Ada"),
        ("Zoë", "émile", "Zoë É."),
    ],
)
def test_display_name_is_first_name_and_last_initial(first: str, last: str, shown: str) -> None:
    assert display_name(first, last) == shown


def test_display_name_never_shows_the_full_last_name() -> None:
    assert "Lovelace" not in display_name("Ada", "Lovelace")
    assert "ovelace" not in display_name("Ada", "Lovelace")


def test_plan_schedule_computes_the_door_window() -> None:
    plan = plan_schedule(T0, T0 + timedelta(hours=3), 45, 30)
    assert plan.starts_at == T0
    assert plan.ends_at == T0 + timedelta(hours=3)
    assert plan.checkin_opens_at == T0 - timedelta(minutes=45)
    assert plan.checkin_closes_at == T0 + timedelta(hours=3, minutes=30)


def test_plan_schedule_with_zero_margins_is_the_event_itself() -> None:
    plan = plan_schedule(T0, T0 + timedelta(hours=1), 0, 0)
    assert (plan.checkin_opens_at, plan.checkin_closes_at) == (T0, T0 + timedelta(hours=1))


@pytest.mark.parametrize("length", [timedelta(0), timedelta(minutes=-1), timedelta(days=-2)])
def test_plan_schedule_rejects_ends_not_after_starts(length: timedelta) -> None:
    with pytest.raises(RuleBroken) as caught:
        plan_schedule(T0, T0 + length, 60, 60)
    assert (caught.value.code, caught.value.field) == ("invalid_schedule", "ends_at")


def test_plan_schedule_accepts_exactly_fourteen_days_but_not_more() -> None:
    plan_schedule(T0, T0 + timedelta(days=14), 60, 60)
    with pytest.raises(RuleBroken, match="14 days") as caught:
        plan_schedule(T0, T0 + timedelta(days=14, seconds=1), 60, 60)
    assert caught.value.code == "invalid_schedule"


OPENS, CLOSES = T0 - timedelta(hours=1), T0 + timedelta(hours=4)


@pytest.mark.parametrize("now", [OPENS, T0, CLOSES, OPENS + timedelta(seconds=1)])
def test_door_open_inside_the_window(now: datetime) -> None:
    check_door_open("scheduled", OPENS, CLOSES, now, override=False)


def test_door_refuses_before_the_window() -> None:
    with pytest.raises(RuleBroken) as caught:
        check_door_open("scheduled", OPENS, CLOSES, OPENS - timedelta(seconds=1), override=False)
    assert caught.value.code == "checkin_not_open"
    assert "17:00" in caught.value.message  # tells the door when it opens


def test_door_refuses_after_the_window() -> None:
    with pytest.raises(RuleBroken) as caught:
        check_door_open("scheduled", OPENS, CLOSES, CLOSES + timedelta(seconds=1), override=False)
    assert caught.value.code == "checkin_closed"


@pytest.mark.parametrize("now", [OPENS - timedelta(days=1), CLOSES + timedelta(days=1)])
def test_override_opens_the_door_outside_the_window(now: datetime) -> None:
    check_door_open("scheduled", OPENS, CLOSES, now, override=True)


@pytest.mark.parametrize("override", [False, True])
def test_cancelled_event_refuses_even_with_override(override: bool) -> None:
    with pytest.raises(RuleBroken) as caught:
        check_door_open(EventStatus.CANCELLED.value, OPENS, CLOSES, T0, override=override)
    assert caught.value.code == "event_cancelled"


@pytest.mark.parametrize(
    ("capacity", "count", "status"),
    [
        (None, 0, "registered"),
        (None, 10_000, "registered"),
        (1, 0, "registered"),
        (1, 1, "waitlisted"),
        (30, 29, "registered"),
        (30, 30, "waitlisted"),
        (30, 31, "waitlisted"),
    ],
)
def test_registration_status_waitlists_at_capacity(capacity: int | None, count: int, status: str) -> None:
    assert registration_status(capacity, count) == status


def test_normalize_tags_dedups_lowercases_and_folds_accents_keeping_order() -> None:
    tags = ["Python", "  python ", "Café", "cafe", "#Grant   Writing", "grant writing", "Data"]
    assert normalize_tags(tags) == ["python", "cafe", "grant writing", "data"]


def test_normalize_tags_drops_empty_and_caps_count_and_length() -> None:
    assert normalize_tags(["", "   ", "#", "##"]) == []
    assert normalize_tags([f"tag{i}" for i in range(30)]) == [f"tag{i}" for i in range(20)]
    (long_tag,) = normalize_tags(["x" * 100])
    assert long_tag == "x" * 60


def test_normalized_tags_never_end_in_a_space() -> None:
    (tag,) = normalize_tags(["ß" + "a" * 57 + " b"])  # 60 characters as typed
    assert tag == tag.strip()


@pytest.mark.parametrize(
    ("minutes", "hours"),
    [(0, 0.0), (7, 0.0), (8, 0.25), (60, 1.0), (67, 1.0), (68, 1.25), (150, 2.5), (185, 3.0)],
)
def test_volunteer_hours_round_to_the_quarter_hour(minutes: int, hours: float) -> None:
    assert volunteer_hours(T0, T0 + timedelta(minutes=minutes)) == hours


def test_volunteer_hours_never_negative() -> None:
    assert volunteer_hours(T0, T0 - timedelta(hours=2)) == 0.0


def test_badge_codes_are_long_url_safe_and_unique() -> None:
    codes = [new_badge_code() for _ in range(1000)]
    assert len(set(codes)) == 1000
    for code in codes:
        assert len(code) >= 20
        assert re.fullmatch(r"[A-Za-z0-9_-]+", code), code


@pytest.mark.parametrize("name", ["Europe/Berlin", "America/Argentina/Buenos_Aires", "UTC"])
def test_check_timezone_accepts_iana_names(name: str) -> None:
    assert check_timezone(name).key == name


@pytest.mark.parametrize("name", ["Mars/Olympus", "../../etc/passwd", "UTC ", "", "Europe/Berlin\x00"])
def test_check_timezone_refuses_other_names(name: str) -> None:
    with pytest.raises(RuleBroken) as caught:
        check_timezone(name)
    assert (caught.value.code, caught.value.field) == ("invalid_timezone", "timezone")


def test_check_timezone_refuses_a_zone_directory() -> None:
    with pytest.raises(RuleBroken):
        check_timezone("America")
