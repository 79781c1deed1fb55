"""Follow-up settings, read only from the environment, with local defaults."""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr

from turnout_common import config
from turnout_common.config import SettingError

TRANSPORTS = ("smtp", "http")
WORKER_LOOPS = ("consumer", "scheduler", "sender", "retention", "relay")


@dataclass(frozen=True, slots=True)
class Settings(config.ServiceSettings):
    consumer_group: str
    smtp_host: str
    smtp_port: int
    smtp_username: str
    smtp_password: str
    smtp_starttls: bool
    mail_from: str
    # -- where links in emails point (and ``public_url``) -----------------------
    unsubscribe_mailto: str = ""
    # -- when -----------------------------------------------------------------
    send_delay_seconds: int = 7200
    window_start: str = "09:00"
    window_end: str = "20:00"
    max_event_age_hours: int = 72
    # -- sending --------------------------------------------------------------
    transport: str = "smtp"
    smtp_timeout_seconds: float = 15.0
    smtp_tls_ca_file: str = ""
    http_api_url: str = "https://api.postmarkapp.com"
    http_api_token: str = ""
    http_message_stream: str = "outbound"
    batch_size: int = 200
    sender_threads: int = 2
    lease_seconds: float = 60.0
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 3600.0
    max_attempts: int = 8
    # Pauses between passes while work keeps coming; idle, the loops sleep on a
    # change feed (a new plan, a batch made ready) and the time their next item
    # falls due, looking anyway every ``idle_poll_seconds`` (at most half a lease).
    scheduler_interval_seconds: float = 1.0
    sender_idle_seconds: float = 0.5
    idle_poll_seconds: float = 30.0
    # -- rules ----------------------------------------------------------------
    introductions_per_person: int = 3
    win_back_min_events: int = 3
    win_back_quiet_days: int = 45
    win_back_scan_seconds: float = 86400.0
    win_back_cooldown_days: int = 90
    # -- engagement ------------------------------------------------------------
    # A click this soon after the message was handed over, or this soon after a
    # click on another link of it, is a link scanner's (followup.domain.engagement).
    scanner_soon_seconds: float = 10.0
    scanner_burst_seconds: float = 2.0
    # -- personal data -------------------------------------------------------
    # How often the retention sweep runs (message bodies, delivery journal, link tracking).
    retention_sweep_seconds: float = 3600.0
    # -- operations -----------------------------------------------------------
    webhook_secret: str = ""
    worker_loops: tuple[str, ...] = WORKER_LOOPS

    @property
    def mail_from_address(self) -> str:
        return parseaddr(self.mail_from)[1] or "hello@turnout.localhost"

    @property
    def mail_from_name(self) -> str:
        return parseaddr(self.mail_from)[0] or "Turnout"

    @property
    def mail_domain(self) -> str:
        return self.mail_from_address.rpartition("@")[2] or "turnout.localhost"

    @classmethod
    def from_env(cls) -> Settings:
        transport = config.env_str("FOLLOWUP_TRANSPORT", "smtp")
        if transport not in TRANSPORTS:
            raise SettingError(f"FOLLOWUP_TRANSPORT must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
        loops = tuple(
            name.strip() for name in config.env_str("FOLLOWUP_WORKER_LOOPS", ",".join(WORKER_LOOPS)).split(",")
        )
        unknown = [name for name in loops if name not in WORKER_LOOPS]
        if unknown or not loops:
            raise SettingError(f"FOLLOWUP_WORKER_LOOPS: unknown loops {unknown}; choose from {WORKER_LOOPS}")
        settings = cls(
            **config.service_values("followup"),
            consumer_group=config.consumer_group("followup"),
            smtp_host=config.env_str("SMTP_HOST", "127.0.0.1"),
            smtp_port=config.env_int("SMTP_PORT", 1025, minimum=1),
            smtp_username=config.env_str("SMTP_USERNAME", ""),
            smtp_password=config.env_str("SMTP_PASSWORD", ""),
            smtp_starttls=config.env_bool("SMTP_STARTTLS", False),
            mail_from=config.env_str("MAIL_FROM", "Turnout <hello@turnout.localhost>"),
            unsubscribe_mailto=config.env_str("FOLLOWUP_UNSUBSCRIBE_MAILTO", ""),
            send_delay_seconds=config.env_int("FOLLOWUP_SEND_DELAY_SECONDS", 7200, minimum=0),
            window_start=config.env_str("FOLLOWUP_WINDOW_START", "09:00"),
            window_end=config.env_str("FOLLOWUP_WINDOW_END", "20:00"),
            max_event_age_hours=config.env_int("FOLLOWUP_MAX_EVENT_AGE_HOURS", 72, minimum=1),
            transport=transport,
            smtp_timeout_seconds=config.env_float("SMTP_TIMEOUT_SECONDS", 15.0),
            smtp_tls_ca_file=config.env_str("SMTP_TLS_CA_FILE", ""),
            http_api_url=config.env_str("FOLLOWUP_HTTP_API_URL", "https://api.postmarkapp.com").rstrip("/"),
            http_api_token=config.env_str("FOLLOWUP_HTTP_API_TOKEN", ""),
            http_message_stream=config.env_str("FOLLOWUP_HTTP_MESSAGE_STREAM", "outbound"),
            batch_size=config.env_int("FOLLOWUP_BATCH_SIZE", 200, minimum=1),
            sender_threads=config.env_int("FOLLOWUP_SENDER_THREADS", 2, minimum=1),
            lease_seconds=config.env_float("FOLLOWUP_LEASE_SECONDS", 60.0),
            retry_base_seconds=config.env_float("FOLLOWUP_RETRY_BASE_SECONDS", 60.0),
            retry_max_seconds=config.env_float("FOLLOWUP_RETRY_MAX_SECONDS", 3600.0),
            max_attempts=config.env_int("FOLLOWUP_MAX_ATTEMPTS", 8, minimum=1),
            scheduler_interval_seconds=config.env_float("FOLLOWUP_SCHEDULER_INTERVAL_SECONDS", 1.0),
            sender_idle_seconds=config.env_float("FOLLOWUP_SENDER_IDLE_SECONDS", 0.5),
            idle_poll_seconds=config.env_float("FOLLOWUP_IDLE_POLL_SECONDS", 30.0),
            introductions_per_person=config.env_int("FOLLOWUP_INTRODUCTIONS_PER_PERSON", 3, minimum=0),
            win_back_min_events=config.env_int("FOLLOWUP_WINBACK_MIN_EVENTS", 3, minimum=1),
            win_back_quiet_days=config.env_int("FOLLOWUP_WINBACK_QUIET_DAYS", 45, minimum=1),
            win_back_scan_seconds=config.env_float("FOLLOWUP_WINBACK_SCAN_SECONDS", 86400.0),
            win_back_cooldown_days=config.env_int("FOLLOWUP_WINBACK_COOLDOWN_DAYS", 90, minimum=1),
            scanner_soon_seconds=config.env_float("FOLLOWUP_SCANNER_SOON_SECONDS", 10.0),
            scanner_burst_seconds=config.env_float("FOLLOWUP_SCANNER_BURST_SECONDS", 2.0),
            retention_sweep_seconds=config.env_float("FOLLOWUP_RETENTION_SWEEP_SECONDS", 3600.0),
            webhook_secret=config.env_str("FOLLOWUP_WEBHOOK_SECRET", ""),
            worker_loops=loops,
        )
        from followup.domain.schedule import DaytimeWindow, InvalidWindow

        try:
            DaytimeWindow.parse(settings.window_start, settings.window_end)
        except InvalidWindow as exc:
            raise SettingError(f"FOLLOWUP_WINDOW_START/END: {exc}") from exc
        if settings.lease_seconds < 1:
            raise SettingError("FOLLOWUP_LEASE_SECONDS must be at least 1")
        if settings.scanner_soon_seconds < 0 or settings.scanner_burst_seconds < 0:
            raise SettingError("FOLLOWUP_SCANNER_SOON_SECONDS and FOLLOWUP_SCANNER_BURST_SECONDS must not be negative")
        if settings.retention_sweep_seconds < 1:
            raise SettingError("FOLLOWUP_RETENTION_SWEEP_SECONDS must be at least 1")
        return settings
