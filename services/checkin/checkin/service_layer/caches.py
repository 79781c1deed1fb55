"""Per-process caches in front of the repositories: a kiosk's current pairing,
whether an API token or a user may still act (and with which role), and each
event's name index."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from checkin.domain.kiosks import NameIndex, SearchEntry
from checkin.service_layer.ports import ApiTokens, EndedSessions, Kiosks, Users
from turnout_common.auth import Principal
from turnout_common.clock import utcnow
from turnout_common.revocations import role_outdated
from turnout_common.types import Doc

T = TypeVar("T")


class KioskSessions:
    """Checks a kiosk token is still the current pairing (cached briefly per process)."""

    def __init__(self, kiosks: Kiosks, ttl: float = 2.0) -> None:
        self.kiosks = kiosks
        self.ttl = ttl
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def current_session(self, kiosk_id: str) -> str | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(kiosk_id)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        session = self.kiosks.current_session(kiosk_id)
        with self._lock:
            self._cache[kiosk_id] = (now, session)
        return session

    def forget(self, kiosk_id: str) -> None:
        with self._lock:
            self._cache.pop(kiosk_id, None)


@dataclass(frozen=True, slots=True)
class UserAccess:
    """What a user's session is checked against: whether the user is active, and
    their role now and since when (absent: never changed)."""

    active: bool
    role: str | None = None
    role_changed_at: datetime | None = None

    @classmethod
    def of(cls, user: Doc | None) -> UserAccess:
        if user is None:
            return cls(active=False)
        return cls(not user.get("deactivated_at"), user.get("role"), user.get("role_changed_at"))


class AccessChecks:
    """Is this API token still valid, this user still active (and in the role
    their session carries), this session not signed out of (cached a few seconds
    per process)."""

    def __init__(self, users: Users, api_tokens: ApiTokens, sessions: EndedSessions, ttl: float = 3.0) -> None:
        self.users = users
        self.api_tokens = api_tokens
        self.sessions = sessions
        self.ttl = ttl
        self._cache: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def _cached(self, key: str, load: Callable[[], T], kind: type[T]) -> T:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.ttl and isinstance(hit[1], kind):
            return hit[1]
        value = load()
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now, value)
        return value

    def api_token_valid(self, token_id: str) -> bool:
        return self._cached(f"t:{token_id}", lambda: bool(self.api_tokens.is_valid(token_id, utcnow())), bool)

    def user(self, principal: Principal) -> UserAccess:
        """The calling user's access (one lookup by id per user every few seconds)."""
        return self._cached(
            f"u:{principal.subject_id}",
            lambda: UserAccess.of(self.users.get_in_org(principal.subject_id, principal.org_id)),
            UserAccess,
        )

    def user_active(self, principal: Principal) -> bool:
        return self.user(principal).active

    def role_current(self, principal: Principal) -> bool:
        """False for a session begun before the user's role changed (or carrying
        another role than the user's now): it must sign in again."""
        user = self.user(principal)
        return not role_outdated(principal, user.role_changed_at, user.role)

    def session_live(self, session_id: str) -> bool:
        return self._cached(f"s:{session_id}", lambda: not self.sessions.is_ended(session_id), bool)

    def forget(self, token_id: str) -> None:
        with self._lock:
            self._cache.pop(f"t:{token_id}", None)

    def forget_session(self, session_id: str) -> None:
        with self._lock:
            self._cache.pop(f"s:{session_id}", None)

    def forget_user(self, user_id: str) -> None:
        with self._lock:
            self._cache.pop(f"u:{user_id}", None)


@dataclass(slots=True)
class CachedRoster:
    built_at: float
    people: list[Doc]
    by_id: dict[str, Doc]
    index: NameIndex
    refreshing: bool = False


# Builds an event's roster: (org_id, event_id) -> the kiosk's view of each registration.
RosterLoader = Callable[[str, str], list[Doc]]


class RosterCache:
    """Per-process search index of each event's names.

    Served stale while a background thread rebuilds it (every ``ttl``
    seconds), so no keystroke waits for a 10,000-person rebuild; whether a
    result is checked in is read fresh for the few results shown.
    """

    def __init__(self, ttl: float = 30.0) -> None:
        self.ttl = ttl
        self._entries: dict[str, CachedRoster] = {}
        self._lock = threading.Lock()

    def _build(self, load: RosterLoader, org_id: str, event_id: str) -> CachedRoster:
        people = load(org_id, event_id)
        index = NameIndex([SearchEntry(p["registration_id"], p["name_folded"]) for p in people])
        return CachedRoster(time.monotonic(), people, {p["registration_id"]: p for p in people}, index)

    def get(self, load: RosterLoader, org_id: str, event_id: str) -> CachedRoster:
        with self._lock:
            cached = self._entries.get(event_id)
            stale = cached is not None and time.monotonic() - cached.built_at > self.ttl
            if stale and cached is not None and not cached.refreshing:
                cached.refreshing = True
                threading.Thread(target=self._refresh, args=(load, org_id, event_id), daemon=True).start()
        if cached is not None:
            return cached
        built = self._build(load, org_id, event_id)
        with self._lock:
            if len(self._entries) > 200:
                self._entries.clear()
            self._entries[event_id] = built
        return built

    def _refresh(self, load: RosterLoader, org_id: str, event_id: str) -> None:
        try:
            built = self._build(load, org_id, event_id)
        except Exception:  # noqa: BLE001 - keep serving the old index; the next call retries
            with self._lock:
                if event_id in self._entries:
                    self._entries[event_id].refreshing = False
            return
        with self._lock:
            self._entries[event_id] = built

    def forget(self, event_id: str) -> None:
        with self._lock:
            self._entries.pop(event_id, None)
