"""Follow-up settings: which nudges an organization and a gathering send, and
how the emails look. Every nudge is on unless switched off; a gathering's
switch overrides its organization's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from followup.domain.nudges import NudgeKind

DEFAULT_PRIMARY = "#1f5f8b"
DEFAULT_ACCENT = "#2e7d32"


@dataclass(frozen=True, slots=True)
class Branding:
    """The organization as its emails show it (name and colours in the header,
    postal address in the footer, as anti-spam law asks)."""

    name: str = ""
    primary_color: str = DEFAULT_PRIMARY
    accent_color: str = DEFAULT_ACCENT
    postal_address: str = ""
    reply_to: str | None = None
    website_url: str | None = None

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None, fallback_name: str) -> Branding:
        doc = doc or {}
        return cls(
            name=str(doc.get("name") or fallback_name),
            primary_color=str(doc.get("primary_color") or DEFAULT_PRIMARY),
            accent_color=str(doc.get("accent_color") or DEFAULT_ACCENT),
            postal_address=str(doc.get("postal_address") or ""),
            reply_to=doc.get("reply_to") or None,
            website_url=doc.get("website_url") or None,
        )


@dataclass(frozen=True, slots=True)
class WinBackRule:
    """Who gets a win-back (the at-risk rule shared with analytics, ``turnout_common.regulars``),
    how often, and whether an organizer approves each one before it goes out."""

    min_events: int = 3
    quiet_days: int = 45
    max_quiet_days: int = 365
    mode: str = "approval"  # off | approval | automatic (see ``followup.domain.winback``)
    cooldown_days: int = 90  # at most one win-back per person in this many days


@dataclass(frozen=True, slots=True)
class FollowupSettings:
    """An organization's settings merged with one gathering's overrides."""

    org_switches: Mapping[str, bool] = field(default_factory=dict)
    event_switches: Mapping[str, bool] = field(default_factory=dict)
    branding: Branding = field(default_factory=Branding)
    introductions_per_person: int = 3
    win_back: WinBackRule = field(default_factory=WinBackRule)
    note: str = ""
    photos_url: str | None = None

    def enabled(self, kind: NudgeKind | str) -> bool:
        name = str(kind)
        if name == NudgeKind.WIN_BACK.value and self.win_back.mode == "off":
            return False
        if name in self.event_switches:
            return bool(self.event_switches[name])
        return bool(self.org_switches.get(name, True))

    @classmethod
    def from_docs(
        cls,
        org_doc: Mapping[str, Any] | None,
        event_doc: Mapping[str, Any] | None,
        *,
        fallback_name: str,
        introductions_per_person: int,
        win_back: WinBackRule,
    ) -> FollowupSettings:
        org_doc = org_doc or {}
        event_doc = event_doc or {}
        win = org_doc.get("win_back") or {}
        content = event_doc.get("content") or {}
        return cls(
            org_switches=dict(org_doc.get("nudges") or {}),
            event_switches=dict(event_doc.get("nudges") or {}),
            branding=Branding.from_doc(org_doc.get("branding"), fallback_name),
            introductions_per_person=int(org_doc.get("introductions_per_person", introductions_per_person)),
            win_back=WinBackRule(
                min_events=int(win.get("min_events", win_back.min_events)),
                quiet_days=int(win.get("quiet_days", win_back.quiet_days)),
                max_quiet_days=int(win.get("max_quiet_days", win_back.max_quiet_days)),
                mode=str(win.get("mode") or win_back.mode),
                cooldown_days=int(win.get("cooldown_days", win_back.cooldown_days)),
            ),
            note=str(content.get("note") or ""),
            photos_url=content.get("photos_url") or None,
        )
