"""The security suites share the launched stack (``running_stack``, from the
root conftest) and report their figures (the authorization matrix's size) at
the end of the session."""

from __future__ import annotations

import pytest

from tests.e2e.stack import RunningStack
from tests.security.world import Org, build_world

# Lines a test wants in the session summary (e.g. the matrix size); printed once at the end.
SUMMARY: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY:
        terminalreporter.section("security")
        for line in SUMMARY:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def world(running_stack: RunningStack) -> tuple[Org, Org]:
    """Organizations A and B on the launched stack, every principal of each, and
    their data arrived in followup and analytics (see ``world.py``)."""
    return build_world(running_stack)
