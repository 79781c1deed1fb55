"""The one key by which every service recognises an email address.

checkin, followup and analytics each keep people under this key; correction
and erasure travel between them by it, so it must be derived the same way
everywhere. Lower-casing (not ``casefold``) keeps letters such as "ß" as they
are: "straße@example.org" and "strasse@example.org" can be two different
mailboxes (IDNA 2008 and internationalised mail treat them so), and merging
two people is worse than keeping one person twice. NFC first, so the same
address typed on two keyboards (a precomposed "é" or "e" plus an accent)
gives one key.
"""

from __future__ import annotations

import unicodedata


def normalize_email(address: str) -> str:
    """The comparison key of an email address: trimmed, NFC, lower case."""
    return unicodedata.normalize("NFC", address.strip()).lower()
