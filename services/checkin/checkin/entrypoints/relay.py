"""``python -m checkin.entrypoints.relay``: moves checkin's outbox to Kafka."""

from __future__ import annotations

from checkin.config import Settings
from turnout_common.relay_main import relay_main


def main() -> None:
    relay_main(Settings.from_env())


if __name__ == "__main__":
    main()
