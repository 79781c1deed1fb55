"""The local stack's mail catcher: unless told of a mail server, ``make run``
keeps every email the stack sends as a file in ``.turnout/mail/new`` (a
Maildir: one message per file, readable in any text editor or mail client).

A real SMTP server (aiosmtpd) in the launcher's process, on 1025 when that port
is free (any free port otherwise); follow-up is pointed at it through
``SMTP_HOST`` and ``SMTP_PORT``, so a follow-up works end to end on a laptop
with no mail set up, and nothing is postponed for want of a server.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox

from turnout_local.processes import free_port

PREFERRED_PORT = 1025


def wanted(env: Mapping[str, str]) -> bool:
    """Catch mail unless the environment names a server or another transport."""
    return not env.get("SMTP_HOST") and env.get("FOLLOWUP_TRANSPORT", "smtp") == "smtp"


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        # As the server will bind: a port whose last connections linger in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class MailCatcher:
    """An SMTP server on 127.0.0.1 that stores each message it accepts in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = PREFERRED_PORT if _bindable(PREFERRED_PORT) else free_port()
        for part in ("tmp", "new", "cur"):  # a Maildir's three folders
            (directory / part).mkdir(parents=True, exist_ok=True)
        self._running = False
        self._controller = Controller(Mailbox(directory), hostname="127.0.0.1", port=self.port)

    @property
    def inbox(self) -> Path:
        return self.directory / "new"

    def env(self) -> dict[str, str]:
        """What follow-up needs to send here."""
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.port), "SMTP_STARTTLS": "false"}

    def start(self) -> None:
        self._controller.start()
        self._running = True

    def stop(self) -> None:
        """Stop it if it started (the launcher's clean-up also runs after a failed start)."""
        if self._running:
            self._controller.stop()
            self._running = False
