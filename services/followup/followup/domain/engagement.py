"""People or machines: who fetched a link or the open pixel of a follow-up.

Mail-security gateways (Microsoft Defender Safe Links, Proofpoint, Mimecast,
Barracuda, ...) fetch every link of a message seconds after it is delivered,
often with a HEAD first; image proxies (Gmail's, Yahoo's, Apple Mail's privacy
pre-fetch) fetch the open pixel whether or not anyone reads the message. Such
fetches are still answered (the redirect, the pixel) and recorded, but flagged
``machine`` with the reason, and no count of engagement includes them.

The signals, strongest first (``classify_click``, ``classify_open``):

- ``head``: a HEAD request; a person's browser never sends one for a link.
- ``scanner_agent``, ``image_proxy``: the user agent names a known link scanner
  or image proxy (``SCANNER_AGENTS``, ``IMAGE_PROXY_AGENTS``).
- ``bot_agent``: the user agent is a known crawler, HTTP library or headless
  browser (the ``crawler-user-agents`` list, kept up to date on PyPI), or empty.
- ``too_soon`` (clicks): within ``Thresholds.soon_seconds`` of the message
  being handed over for delivery: faster than anyone reads an email.
- ``burst`` (clicks): a different link of the same message was fetched within
  ``Thresholds.burst_seconds``: nobody clicks two links a second apart.

A rule here only decides; nothing in this module touches storage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from crawleruseragents import is_crawler

HEAD = "head"
SCANNER_AGENT = "scanner_agent"
IMAGE_PROXY = "image_proxy"
BOT_AGENT = "bot_agent"
TOO_SOON = "too_soon"
BURST = "burst"
REASONS = (HEAD, SCANNER_AGENT, IMAGE_PROXY, BOT_AGENT, TOO_SOON, BURST)

# Link scanners of mail-security products, by a fragment of their user agent
# (case-insensitive). Many scanners pretend to be a browser; those are caught by
# the timing rules instead.
SCANNER_AGENTS: tuple[tuple[str, str], ...] = (
    ("Microsoft Defender Safe Links", r"safelinks|safe\s?links"),
    ("Microsoft link preview (Outlook, Safe Links)", r"bingpreview"),
    ("Microsoft Office link check", r"microsoft office existence discovery|ms-office|msoffice"),
    ("Proofpoint URL Defense", r"proofpoint"),
    ("Mimecast URL Protect", r"mimecast"),
    ("Barracuda Link Protection", r"barracuda"),
    ("Cisco Secure Email (IronPort)", r"ironport"),
    ("Trend Micro", r"trend ?micro"),
    ("Sophos", r"sophos"),
    ("Trellix / FireEye", r"fireeye|trellix"),
    ("Symantec / Broadcom", r"symantec|messagelabs"),
)

# Proxies that fetch a message's images for the reader (so the pixel says
# nothing about whether a person read it).
IMAGE_PROXY_AGENTS: tuple[tuple[str, str], ...] = (
    ("Gmail image proxy", r"googleimageproxy|ggpht\.com"),
    ("Yahoo Mail proxy", r"yahoomailproxy"),
    ("Slack image proxy", r"slack-imgproxy"),
    # Apple Mail Privacy Protection pre-fetches through Apple's proxies with a
    # user agent of just "Mozilla/5.0" (no platform, no engine).
    ("Apple Mail privacy pre-fetch", r"^mozilla/5\.0$"),
)

_SCANNERS = re.compile("|".join(f"(?:{pattern})" for _, pattern in SCANNER_AGENTS), re.IGNORECASE)
_PROXIES = re.compile("|".join(f"(?:{pattern})" for _, pattern in IMAGE_PROXY_AGENTS), re.IGNORECASE)
MAX_AGENT = 1000  # characters of a user agent looked at (they are rarely a tenth of that)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """How fast is too fast for a person (``FOLLOWUP_SCANNER_SOON_SECONDS``, ``..._BURST_SECONDS``)."""

    soon_seconds: float = 10.0
    burst_seconds: float = 2.0


@dataclass(frozen=True, slots=True)
class Fetch:
    """One request for a link or the pixel, as the web server saw it."""

    method: str
    user_agent: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Verdict:
    machine: bool
    reason: str | None = None


HUMAN = Verdict(False)


@dataclass(frozen=True, slots=True)
class LastClick:
    """The latest fetch of a link of the same message (any kind, any link)."""

    url: str
    at: datetime


def _agent_verdict(user_agent: str, *, pixel: bool) -> Verdict | None:
    agent = user_agent.strip()[:MAX_AGENT]
    if not agent:
        return Verdict(True, BOT_AGENT)
    if _SCANNERS.search(agent):
        return Verdict(True, SCANNER_AGENT)
    if _PROXIES.search(agent):
        # A pixel through a proxy is an image proxy; a link fetched by one is a scanner all the same.
        return Verdict(True, IMAGE_PROXY if pixel else SCANNER_AGENT)
    if is_crawler(agent):
        return Verdict(True, BOT_AGENT)
    return None


def classify_open(fetch: Fetch) -> Verdict:
    """Whether a fetch of the open pixel was a machine's (and why)."""
    if fetch.method.upper() == "HEAD":
        return Verdict(True, HEAD)
    return _agent_verdict(fetch.user_agent, pixel=True) or HUMAN


def classify_click(
    fetch: Fetch,
    url: str,
    *,
    delivered_at: datetime | None,
    last_click: LastClick | None,
    thresholds: Thresholds = Thresholds(),
) -> Verdict:
    """Whether a fetch of a tracked link was a machine's (and why).

    ``delivered_at`` is when the message was handed over for delivery (None
    when unknown: no timing rule); ``last_click`` the latest earlier fetch of
    any link of the same message.
    """
    if fetch.method.upper() == "HEAD":
        return Verdict(True, HEAD)
    by_agent = _agent_verdict(fetch.user_agent, pixel=False)
    if by_agent is not None:
        return by_agent
    if delivered_at is not None and (fetch.at - delivered_at).total_seconds() < thresholds.soon_seconds:
        return Verdict(True, TOO_SOON)
    if (
        last_click is not None
        and last_click.url != url
        and abs((fetch.at - last_click.at).total_seconds()) <= thresholds.burst_seconds
    ):
        return Verdict(True, BURST)
    return HUMAN
