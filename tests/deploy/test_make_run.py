"""``make run``'s launcher (``python -m turnout_local run``) as someone trying
Turnout meets it, on free ports and a data directory of its own: it prints
where everything is and the demo login, the login works, and with no mail
server set up the demo's follow-up emails arrive as files in the data
directory (a Maildir), each once; Ctrl-C stops everything and exits 0."""

from __future__ import annotations

import contextlib
import email
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests

from turnout_local.processes import free_port, wait_until
from turnout_local.stack import DEMO_EMAIL, DEMO_PASSWORD

pytestmark = pytest.mark.e2e

PORTS = ("CHECKIN_PORT", "FOLLOWUP_PORT", "ANALYTICS_PORT", "KAFKA_PORT", "MONGODB_PORT")
# Whatever would point the launcher elsewhere than at its own parts.
NOT_INHERITED = ("SMTP_", "FOLLOWUP_TRANSPORT", "KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI", "TURNOUT_DATA_DIR")


class Output:
    """The launcher's output, read as it comes."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def finish(self) -> None:
        """Wait for the last lines (after the process ended)."""
        self._thread.join(timeout=10)

    def wait_for(self, needle: str, timeout: float) -> None:
        try:
            wait_until(lambda: needle in self.text, timeout, f"{needle!r} to be printed")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}:\n{self.text}") from exc


def _messages(inbox: Path) -> list[EmailMessage]:
    found = []
    for path in sorted(inbox.iterdir()):
        with path.open("rb") as handle:
            message = email.message_from_binary_file(handle, policy=policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def test_make_run_starts_everything_keeps_the_demo_mail_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    ports = {name: str(free_port()) for name in PORTS}
    env = {key: value for key, value in os.environ.items() if not key.startswith(NOT_INHERITED)}
    env.update(ports, TURNOUT_DATA_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "turnout_local", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(process)
    try:
        output.wait_for("Press Ctrl-C to stop.", timeout=180)
        checkin = f"http://127.0.0.1:{ports['CHECKIN_PORT']}"
        inbox = tmp_path / "mail" / "new"
        assert f"Check-in   {checkin}/" in output.text
        assert f"Follow-up  http://127.0.0.1:{ports['FOLLOWUP_PORT']}/" in output.text
        assert f"Analytics  http://127.0.0.1:{ports['ANALYTICS_PORT']}/" in output.text
        assert f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}" in output.text
        assert f"(caught: one file per email in {inbox})" in output.text

        login = requests.post(
            f"{checkin}/api/v1/auth/login", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD}, timeout=10
        )
        assert login.status_code == 200, login.text
        events = requests.get(
            f"{checkin}/api/v1/events", headers={"Authorization": f"Bearer {login.json()['token']}"}, timeout=10
        ).json()["events"]
        now = datetime.now(UTC)
        coming = [event for event in events if datetime.fromisoformat(event["starts_at"]) > now]
        registered = sum(event["registered_count"] for event in coming)
        assert registered > 0, events

        # The demo's registrations for the gathering to come are each confirmed by email
        # (one that has already started is not).
        with contextlib.suppress(TimeoutError):  # the assertions below say what is missing
            wait_until(lambda: inbox.is_dir() and len(list(inbox.iterdir())) >= registered, 90, "the confirmations")
        messages = _messages(inbox)
        assert len(messages) >= registered, output.text
        confirmations = [message for message in messages if message["Subject"].startswith("You're registered:")]
        assert len(confirmations) == registered
        assert len({message["Message-ID"] for message in messages}) == len(messages)  # none twice
        first = confirmations[0]
        assert "@" in first["To"] and first["From"]
        assert any(part.get_content_type() == "text/calendar" for part in first.walk())
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    output.finish()
    assert code == 0, output.text
    assert "Stopped." in output.text
