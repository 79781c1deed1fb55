"""Schemathesis on each service's ``/openapi.json`` (bounded examples, signed in
as the demo user, on the launched stack): no server error and no response
that breaks its own documentation (status, content type, body schema,
headers), invalid input refused, undeclared methods answered 405 with
``Allow``, and no protected operation answering without credentials.

The number of cases run per service goes to the session summary. More
examples or another seed: ``TURNOUT_FUZZ_EXAMPLES=200 TURNOUT_FUZZ_SEED=7``.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.stack import RunningStack
from tests.security import fuzz_support
from tests.security.conftest import SUMMARY

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fuzz_headers(running_stack: RunningStack) -> dict[str, str]:
    return fuzz_support.demo_session(running_stack)


@pytest.mark.parametrize("service", ["checkin", "followup", "analytics"])
def test_every_operation_keeps_to_its_documentation(
    running_stack: RunningStack, fuzz_headers: dict[str, str], service: str
) -> None:
    started = time.monotonic()
    if service == "checkin":
        parameters = fuzz_support.checkin_ids(running_stack, fuzz_headers)
    else:
        parameters = fuzz_support.figures_ids(running_stack, fuzz_headers)
    run = fuzz_support.run_schemathesis(running_stack, service, fuzz_headers, parameters)
    elapsed = time.monotonic() - started
    line = (
        f"schemathesis {service}: {run.cases} cases over {run.operations} operations in {elapsed:.0f}s "
        f"(seed {fuzz_support.SEED}, {fuzz_support.EXAMPLES} examples per phase)"
    )
    SUMMARY.append(line)
    print(line)
    assert run.operations > 0 and run.cases > run.operations, run.output[-3000:]
    assert run.exit_code == 0 and not run.failures, f"{run.failures}\n{run.output[-12000:]}"
