"""Schemathesis against one service of the launched stack, as its command line
runs it (``schemathesis run``), with a JSON report to read the figures from.

The fuzzer signs in as the demo user with a session of its own (the stack's
``running_stack.token`` stays untouched for the other suites) and gets real
ids of the demo organization for the path parameters, so generated requests
reach the code behind the 404: a throwaway event of its own (scheduling,
editing, ending and cancelling it harms nothing), a registration, a kiosk, a
user and an API token made for it, and an ended demo event with figures for
analytics and followup.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from tests.e2e.stack import RunningStack
from turnout_local.stack import DEMO_EMAIL, DEMO_PASSWORD

TIMEOUT = 30
# Examples per operation and phase: the three services' runs take about a minute
# together on 2 cores. TURNOUT_FUZZ_EXAMPLES asks for more (e.g. 200 before a release).
EXAMPLES = int(os.environ.get("TURNOUT_FUZZ_EXAMPLES", "12"))
# A fixed seed keeps `make test` reproducible; TURNOUT_FUZZ_SEED explores other inputs.
SEED = int(os.environ.get("TURNOUT_FUZZ_SEED", "20261206"))

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "unsupported_method",
    "ignored_auth",
)

# Operations the fuzzer must not call. Signing out revokes the fuzzer's own
# session: every later case would be a 401 and test nothing.
EXCLUDED_PATHS = r"^/(api/v1/auth/)?logout$"


@dataclass
class FuzzRun:
    service: str
    cases: int
    operations: int
    failures: list[dict[str, Any]]
    output: str
    exit_code: int
    report: dict[str, Any] = field(default_factory=dict)


def _ok(answer: requests.Response, *statuses: int) -> Any:
    expected = statuses or (200, 201)
    assert answer.status_code in expected, (answer.request.method, answer.url, answer.status_code, answer.text[:300])
    return answer.json()


def demo_session(stack: RunningStack) -> dict[str, str]:
    """A fresh session of the demo user (the fuzzer may end up revoking or
    exhausting what it holds; other suites keep theirs)."""
    answer = requests.post(
        stack.url("checkin", "/api/v1/auth/login"),
        json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD},
        timeout=TIMEOUT,
    )
    return {"Authorization": f"Bearer {_ok(answer, 200)['token']}"}


def checkin_ids(stack: RunningStack, headers: dict[str, str]) -> dict[str, str]:
    """Throwaway resources in the demo organization for checkin's path parameters."""

    def api(method: str, path: str, *statuses: int, **kwargs: Any) -> Any:
        sent = {**headers, **kwargs.pop("headers", {})}
        answer = requests.request(method, stack.url("checkin", path), headers=sent, timeout=TIMEOUT, **kwargs)
        return _ok(answer, *statuses)

    tag = uuid.uuid4().hex[:6]
    now = datetime.now(UTC)
    event = api(
        "POST",
        "/api/v1/events",
        201,
        json={
            "title": f"Fuzz target {tag}",
            "kind": "meeting",
            "starts_at": (now - timedelta(minutes=30)).isoformat(),
            "ends_at": (now + timedelta(hours=3)).isoformat(),
            "timezone": "Europe/Berlin",
        },
    )
    registration = api(
        "POST",
        f"/api/v1/events/{event['id']}/registrations",
        json={"first_name": "Fuzz", "last_name": tag, "email": f"fuzz-{tag}@example.org", "consent_email": True},
    )
    kiosk = api("POST", f"/api/v1/events/{event['id']}/kiosks", json={"name": f"Fuzz {tag}", "staff_pin": "2468"})
    user = api(
        "POST",
        "/api/v1/users",
        201,
        json={"email": f"fuzz-user-{tag}@example.org", "name": "Fuzz", "role": "viewer", "password": f"pw-{tag}-{tag}"},
    )
    token = api("POST", "/api/v1/api-tokens", 201, json={"name": f"fuzz {tag}", "role": "viewer", "expires_in_days": 1})
    job = api(
        "POST",
        f"/api/v1/events/{event['id']}/imports",
        202,
        params={"format": "generic", "mapping": '{"first_name":"first","last_name":"last","email":"email"}'},
        data=f"first,last,email\nImported,{tag},imported-{tag}@example.org\n".encode(),
        headers={"Content-Type": "text/csv"},
    )
    return {
        "event_id": event["id"],
        "registration_id": registration["id"],
        "kiosk_id": kiosk["id"],
        "user_id": user["id"],
        "token_id": token["id"],
        "import_id": job["id"],
    }


def figures_ids(stack: RunningStack, headers: dict[str, str]) -> dict[str, str]:
    """An ended demo event with figures, and a person, for analytics and followup."""
    events = _ok(requests.get(stack.url("analytics", "/api/v1/events"), headers=headers, timeout=TIMEOUT))["events"]
    best = max(events, key=lambda event: event["checked_in"])
    people = _ok(requests.get(stack.url("analytics", "/api/v1/people?limit=1"), headers=headers, timeout=TIMEOUT))
    return {"event_id": best["event_id"], "person_id": people["people"][0]["person_id"]}


# The launched stack has no bounce-webhook secret, where followup's webhook answers
# its documented 503 "webhook not configured" (the authorization matrix asserts it).
WEBHOOK_NOT_CONFIGURED = """
[[operations]]
include-path = "/api/v1/webhooks/bounces"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", 503]
"""


# A real event's live figures stream for minutes by design (then "reconnect"):
# the fuzzer asks for the stream of an event there is none of (its checks and 404).
LIVE_STREAMS = """
[[operations]]
include-path = "/api/v1/events/{event_id}/live"
parameters = { "path.event_id" = "no-such-event" }
"""


def _config(parameters: dict[str, str]) -> str:
    lines = ["[parameters]"]
    lines += [f'"path.{name}" = {json.dumps(value)}' for name, value in parameters.items()]
    return "\n".join(lines) + "\n" + WEBHOOK_NOT_CONFIGURED + LIVE_STREAMS


def run_schemathesis(stack: RunningStack, service: str, headers: dict[str, str], parameters: dict[str, str]) -> FuzzRun:
    """``schemathesis run`` against the service's /openapi.json; the run's figures
    and failures from its JSON report, its console output for the failures' details."""
    workdir = Path(tempfile.mkdtemp(prefix=f"fuzz-{service}-"))
    config = workdir / "schemathesis.toml"
    config.write_text(_config(parameters), encoding="utf-8")
    report = workdir / "report.json"
    argv = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        stack.url(service, "/openapi.json"),
        "--header",
        f"Authorization: {headers['Authorization']}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--no-shrink",
        # One worker: Hypothesis' strategy descriptions are not thread-safe (with two,
        # a run now and then ends in an internal "AST constructor recursion" error).
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--exclude-path-regex",
        EXCLUDED_PATHS,
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--warnings",
        "off",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=workdir, check=False)
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8")) if report.exists() else {}
    cases = int(data.get("test_cases", {}).get("generated", 0))
    operations = int(data.get("operations", {}).get("tested", 0))
    failures = list(data.get("failures", [])) + list(data.get("errors", []))
    return FuzzRun(service, cases, operations, failures, done.stdout + done.stderr, done.returncode, data)
