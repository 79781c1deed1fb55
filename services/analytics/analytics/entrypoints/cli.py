"""``python -m analytics.entrypoints.cli``: analytics administration from a shell.

- ``rebuild [--projection events|people ...]``: rebuild projections from the
  archive into a fresh generation of collections and switch it live at the
  end, printing progress (messages per second). The worker may keep running.
"""

from __future__ import annotations

import argparse
import sys

from analytics.adapters.mongo import MongoProjections, ensure_indexes
from analytics.config import Settings
from analytics.domain.projections import PROJECTIONS
from analytics.service_layer.rebuild import Progress, rebuild
from turnout_common.mongo import connect


def _eta(progress: Progress) -> str:
    if progress.rate <= 0 or progress.done >= progress.total:
        return ""
    seconds = int((progress.total - progress.done) / progress.rate)
    return f", about {seconds // 60}m{seconds % 60:02d}s left"


def print_progress(progress: Progress) -> None:
    share = 100.0 * progress.done / progress.total if progress.total else 100.0
    print(
        f"rebuild [{progress.phase}] {progress.done:,}/{progress.total:,} messages ({share:.0f}%), "
        f"{progress.rate:,.0f} messages/s{_eta(progress)}",
        file=sys.stderr,
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analytics.entrypoints.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    again = sub.add_parser("rebuild", help="rebuild projections from the archive (with progress)")
    again.add_argument(
        "--projection",
        action="append",
        choices=PROJECTIONS,
        help="a projection group to rebuild (repeatable; default: all)",
    )
    again.add_argument("--batch-size", type=int, default=2000, help="messages per batch (default 2000)")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.batch_size > 10_000:
        parser.error("--batch-size must be between 1 and 10000")
    settings = Settings.from_env()
    client = connect(settings.mongodb_uri, "turnout-analytics-cli")
    try:
        db = client[settings.database]
        ensure_indexes(db)
        report = rebuild(
            MongoProjections(client, db),
            args.projection or PROJECTIONS,
            batch_size=args.batch_size,
            on_progress=print_progress,
        )
    finally:
        client.close()
    generations = ", ".join(f"{name} generation {number}" for name, number in sorted(report.generations.items()))
    print(
        f"rebuilt {', '.join(report.projections)} from {report.messages:,} archived messages in "
        f"{report.seconds:.1f}s ({report.rate:,.0f} messages/s); live: {generations}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
