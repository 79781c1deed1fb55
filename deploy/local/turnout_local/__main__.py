"""``python -m turnout_local run``: the whole stack with demo data, until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from turnout_local import mail
from turnout_local.stack import DEMO_EMAIL, DEMO_PASSWORD, Stack, StackConfig


def run() -> int:
    config = StackConfig.from_env()
    catcher = mail.MailCatcher(config.data_dir / "mail") if mail.wanted(os.environ) else None
    if catcher is not None:
        config.extra_env.update(catcher.env())
    stack = Stack(config)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    try:
        if catcher is not None:
            catcher.start()
        print("Starting Kafka (Tansu) and MongoDB (SecantusDB)...", flush=True)
        stack.start_infrastructure()
        print("Loading demo data...", flush=True)
        stack.load_demo()
        print("Starting services...", flush=True)
        stack.start_services()
        stack.wait_ready()
        elapsed = time.monotonic() - started
        kafka_note = "" if config.kafka_bootstrap_servers else "   (Tansu, in memory)"
        mongo_note = "" if config.mongodb_uri else f"   (SecantusDB, data in {config.data_dir / 'mongodb'})"
        mail_line = (
            f"smtp://127.0.0.1:{catcher.port}   (caught: one file per email in {catcher.inbox})"
            if catcher is not None
            else "your server (SMTP_HOST or FOLLOWUP_TRANSPORT is set)"
        )
        print(
            f"""
Turnout is running ({elapsed:.0f}s). Logs: {stack.log_dir}

  Check-in   {config.url_of("checkin")}/
  Follow-up  {config.url_of("followup")}/
  Analytics  {config.url_of("analytics")}/
  Kafka      {config.bootstrap}{kafka_note}
  MongoDB    {config.mongo}{mongo_note}
  Mail       {mail_line}

  Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}
  Kiosk:      {config.url_of("checkin")}/kiosk  (pair it with a code from an event's page, "Pair a kiosk")
  Try: curl -s -X POST {config.url_of("checkin")}/api/v1/auth/login -H 'Content-Type: application/json' \\
         -d '{{"email": "{DEMO_EMAIL}", "password": "{DEMO_PASSWORD}"}}'

Press Ctrl-C to stop.""",
            flush=True,
        )
        while not stopping:
            for name, child in stack.children.items():
                if not child.alive():
                    print(f"{name} exited unexpectedly; last lines of its log:\n{child.tail()}", flush=True)
                    stopping = True
                    break
            time.sleep(0.5)
        return 0
    except Exception as exc:  # noqa: BLE001 - print a readable reason, then clean up
        print(f"Turnout failed to start: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        print("\nStopping...", flush=True)
        stack.stop()
        if catcher is not None:
            catcher.stop()
        print("Stopped.", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="turnout_local")
    parser.add_argument("command", choices=["run"], help="run: the whole local stack")
    parser.parse_args()
    sys.exit(run())


if __name__ == "__main__":
    main()
