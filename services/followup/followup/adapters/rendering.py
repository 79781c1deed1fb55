"""Jinja templates to MIME: every email has a plain-text and an HTML
alternative (``multipart/alternative``), both quoted-printable so any relay
can carry them, and the headers the service layer asked for.

The MIME is composed here directly rather than with ``email.message``: the
standard library's header registry costs more per message than
everything else a send does. Headers are ASCII or RFC 2047-encoded; tests
parse the result with the standard library to hold it to the standard.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from email.header import Header
from email.utils import format_datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from followup.domain.mail import OutgoingMail
from followup.service_layer.ports import Attachment, Draft

SUBJECTS = {
    "thank_you": "Thank you for coming to {{ event.title }}",
    "we_missed_you": "We missed you at {{ event.title }}",
    "first_timer_welcome": "Welcome to {{ org.name }}, {{ person.first_name }}!",
    "introduction_request": "Someone at {{ event.title }} you might like to meet",
    "introduction": "Meet {{ introduction.first_name }}",
    "win_back": "{% if winback %}{{ winback.subject }}{% else %}It's been a while, {{ person.first_name }}{% endif %}",
    "volunteer_hours": "Your volunteer hours at {{ event.title }}",
    "data_link": "{% if purpose == 'erasure' %}Confirm erasing your data at {{ org.name }}"
    "{% else %}Your data at {{ org.name }}{% endif %}",
    "registration_confirmation": "You're registered: {{ event.title }}",
    "event_changed": "Changed: {{ event.title }}",
    "event_cancelled": "Cancelled: {{ event.title }}",
}


def _hours(value: Any) -> str:
    number = float(value or 0)
    text = f"{number:.2f}".rstrip("0").rstrip(".")
    return f"{text} hour" if text == "1" else f"{text} hours"


class JinjaRenderer:
    """Renders ``templates/email/<kind>.{txt,html}`` inside shared layouts."""

    def __init__(self) -> None:
        self.env = Environment(
            loader=PackageLoader("followup", "templates/email"),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters["hours"] = _hours
        self._subjects = {kind: self.env.from_string(text) for kind, text in SUBJECTS.items()}

    def render_parts(self, kind: str, context: dict[str, Any]) -> tuple[str, str, str]:
        """(subject, text, html) for one nudge kind."""
        subject = " ".join(self._subjects[kind].render(context).split())
        text = self.env.get_template(f"{kind}.txt").render(context)
        html = self.env.get_template(f"{kind}.html").render(context)
        return subject, text, html

    def render(self, draft: Draft) -> OutgoingMail:
        subject, text, html = self.render_parts(draft.kind, draft.context)
        headers = [
            ("From", draft.from_header),
            ("To", draft.to_header),
            ("Subject", subject),
            ("Date", format_datetime(draft.date)),
            ("Message-ID", draft.message_id),
        ]
        if draft.reply_to:
            headers.append(("Reply-To", draft.reply_to))
        headers.extend(draft.headers.items())
        return OutgoingMail(
            followup_id=draft.followup_id,
            message_id=draft.message_id,
            envelope_from=draft.envelope_from,
            from_header=draft.from_header,
            to_address=draft.to_address,
            to_header=draft.to_header,
            subject=subject,
            text=text,
            html=html,
            headers=dict(draft.headers),
            raw=compose_mime(
                headers, text, html, boundary=f"=_turnout_{draft.followup_id}", attachments=draft.attachments
            ),
            reply_to=draft.reply_to,
            attachments=tuple((a.filename, a.content_type, a.data) for a in draft.attachments),
        )


def _header_line(name: str, value: str) -> str:
    value = " ".join(value.split())  # no raw line breaks in a header
    if not value.isascii():
        return f"{name}: {Header(value, 'utf-8', header_name=name).encode(linesep=chr(10))}"
    line = f"{name}: {value}"
    if len(line) > 78 and ", " in value:
        line = f"{name}: " + ",\n ".join(value.split(", "))  # fold lists at their commas
    return line


def _quoted_printable(text: str) -> str:
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(data, quotetabs=False, istext=True).decode("ascii")


def _base64(data: bytes) -> str:
    return base64.encodebytes(data).decode("ascii").rstrip("\n")


def _alternative(boundary: str, text: str, html: str, inline: Sequence[Attachment]) -> list[str]:
    lines: list[str] = []
    for subtype, body in (("plain", text), ("html", html)):
        lines += [
            f"--{boundary}",
            f'Content-Type: text/{subtype}; charset="utf-8"',
            "Content-Transfer-Encoding: quoted-printable",
            "",
            _quoted_printable(body),
        ]
    for attachment in inline:
        lines += [
            f"--{boundary}",
            f'Content-Type: {attachment.content_type}; charset="utf-8"',
            "Content-Transfer-Encoding: base64",
            "",
            _base64(attachment.data),
        ]
    return [*lines, f"--{boundary}--"]


def compose_mime(
    headers: list[tuple[str, str]], text: str, html: str, *, boundary: str, attachments: Sequence[Attachment] = ()
) -> bytes:
    """A ``multipart/alternative`` message (text first, HTML second), CRLF line endings.

    With attachments: a ``multipart/mixed`` of that alternative and each file
    (base64). A calendar file is also the alternative's last part (with its
    ``method``), where calendar programs look for an invitation or its update.

    The boundaries start with ``=_``, which quoted-printable and base64 bodies
    cannot contain (``=`` is always encoded; base64 pads with ``=`` only at the
    end), so they never collide with the content.
    """
    lines = [_header_line(name, value) for name, value in headers]
    lines.append("MIME-Version: 1.0")
    if not attachments:
        lines += [f'Content-Type: multipart/alternative; boundary="{boundary}"', ""]
        lines += _alternative(boundary, text, html, ())
    else:
        inner = f"{boundary}_alt"
        lines += [f'Content-Type: multipart/mixed; boundary="{boundary}"', "", f"--{boundary}"]
        lines += [f'Content-Type: multipart/alternative; boundary="{inner}"', ""]
        lines += _alternative(inner, text, html, [a for a in attachments if a.inline_alternative])
        for attachment in attachments:
            name = attachment.filename.replace('"', "")
            lines += [
                f"--{boundary}",
                f'Content-Type: {attachment.content_type}; name="{name}"',
                f'Content-Disposition: attachment; filename="{name}"',
                "Content-Transfer-Encoding: base64",
                "",
                _base64(attachment.data),
            ]
        lines.append(f"--{boundary}--")
    lines.append("")
    return "\n".join(lines).encode("ascii").replace(b"\n", b"\r\n")
