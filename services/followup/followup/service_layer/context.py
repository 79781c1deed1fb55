"""The service layer's view of the wired application (see ``followup.bootstrap``):
settings, the ports (storage, transactions, mail transport, renderer) and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from followup.config import Settings
from followup.domain.engagement import Thresholds
from followup.domain.links import LinkTokens
from followup.domain.nudges import RetryPolicy
from followup.domain.schedule import DaytimeWindow
from followup.domain.settings import WinBackRule
from followup.service_layer.ports import MailTransport, PollingSignals, Renderer, WorkSignals
from followup.service_layer.repositories import Store, Transactions, Tx
from turnout_common.clock import utcnow

T = TypeVar("T")


@dataclass
class Services:
    store: Store  # outside any transaction
    transactions: Transactions
    settings: Settings
    links: LinkTokens
    renderer: Renderer
    transport: MailTransport | None = None
    clock: Callable[[], datetime] = utcnow
    # The storage's own errors ("unreachable or failing"): the loops back off and retry on these.
    storage_errors: tuple[type[BaseException], ...] = ()
    # Where the loops learn that work was written (else they poll).
    signals: WorkSignals = field(default_factory=PollingSignals)

    def transaction(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in one transaction: its writes and its messages are stored together."""
        return self.transactions.run(work)

    def now(self) -> datetime:
        return self.clock()

    @property
    def window(self) -> DaytimeWindow:
        return DaytimeWindow.parse(self.settings.window_start, self.settings.window_end)

    @property
    def send_delay(self) -> timedelta:
        return timedelta(seconds=self.settings.send_delay_seconds)

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.settings.lease_seconds)

    @property
    def idle_poll_seconds(self) -> float:
        """The longest an idle loop sleeps without looking (safety poll; leases expire on this clock)."""
        return max(0.5, min(self.settings.idle_poll_seconds, self.settings.lease_seconds / 2))

    @property
    def retry_policy(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(s.retry_base_seconds, s.retry_max_seconds, s.max_attempts)

    @property
    def scanner_thresholds(self) -> Thresholds:
        return Thresholds(self.settings.scanner_soon_seconds, self.settings.scanner_burst_seconds)

    @property
    def win_back_rule(self) -> WinBackRule:
        return WinBackRule(
            self.settings.win_back_min_events,
            self.settings.win_back_quiet_days,
            cooldown_days=self.settings.win_back_cooldown_days,
        )
