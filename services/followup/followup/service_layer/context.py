"""The service layer's view of the wired application (see ``followup.bootstrap``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo import MongoClient
from pymongo.database import Database

from followup.config import Settings
from followup.domain.links import LinkTokens
from followup.domain.nudges import RetryPolicy
from followup.domain.schedule import DaytimeWindow
from followup.domain.settings import WinBackRule
from followup.service_layer.ports import MailTransport, Renderer
from turnout_common.clock import utcnow
from turnout_common.contracts import ContractRegistry, registry
from turnout_common.mongo import UnitOfWork

Doc = dict[str, Any]


@dataclass
class Services:
    client: MongoClient[Doc]
    db: Database[Doc]
    settings: Settings
    links: LinkTokens
    renderer: Renderer
    transport: MailTransport | None = None
    clock: Callable[[], datetime] = utcnow
    contracts: ContractRegistry = field(default_factory=registry)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.client, self.db, self.contracts)

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
    def retry_policy(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(s.retry_base_seconds, s.retry_max_seconds, s.max_attempts)

    @property
    def win_back_rule(self) -> WinBackRule:
        return WinBackRule(self.settings.win_back_min_events, self.settings.win_back_quiet_days)
