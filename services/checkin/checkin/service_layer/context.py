"""The service layer's view of the wired application (built by ``checkin.bootstrap``).

Everything a use case needs from the outside world, typed on the ports of
``checkin.service_layer.ports``: the service layer never imports the bootstrap,
the adapters' database driver or the entrypoints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from checkin.config import Settings
from checkin.service_layer.caches import AccessChecks, KioskSessions, RosterCache
from checkin.service_layer.ports import EventLookup, Store, UnitOfWork
from turnout_common.auth import TokenSigner

if TYPE_CHECKING:
    from checkin.service_layer.checkins import CheckinAnswer, CheckinCommand
    from checkin.service_layer.group_commit import GroupCommit


@dataclass(slots=True)
class Context:
    """Everything a checkin use case needs from the outside world."""

    store: Store  # repositories outside any transaction
    new_uow: Callable[[], UnitOfWork]
    signer: TokenSigner
    settings: Settings
    events: EventLookup
    kiosk_sessions: KioskSessions
    rosters: RosterCache
    access: AccessChecks
    # The web process's group commit of door scans (None: each scan alone).
    door: GroupCommit[CheckinCommand, CheckinAnswer] | None = field(default=None, kw_only=True)

    def uow(self) -> UnitOfWork:
        return self.new_uow()
