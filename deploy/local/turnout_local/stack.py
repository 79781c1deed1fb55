"""The whole local stack: broker, database, topics and every service process.

Used by ``make run`` and by the end-to-end tests (on free ports, so tests run
beside a running ``make run``). Setting ``KAFKA_BOOTSTRAP_SERVERS`` or
``MONGODB_URI`` points the services at a real Apache Kafka or MongoDB instead
of starting Tansu or SecantusDB.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import requests

from turnout_local.processes import Child, database_uri, free_port, start_broker, start_database, wait_until

REPO = Path(__file__).resolve().parents[3]

DEMO_EMAIL = "demo@turnout.localhost"
DEMO_PASSWORD = "turnout-demo-2026"

# Which processes each service runs: each worker also runs its service's outbox
# relay (turnout_common.relay_main), one process less per service.
PROCESSES: dict[str, tuple[str, ...]] = {
    "checkin": ("web", "worker"),
    "followup": ("web", "worker"),
    "analytics": ("web", "worker"),
}


@dataclass
class StackConfig:
    data_dir: Path
    checkin_port: int = 8001
    followup_port: int = 8002
    analytics_port: int = 8003
    kafka_port: int = 9092
    mongodb_port: int = 27017
    kafka_bootstrap_servers: str | None = None  # external broker, if set
    mongodb_uri: str | None = None  # external database, if set
    partitions: int = 6
    web_workers: dict[str, int] = field(default_factory=lambda: {"checkin": 1, "followup": 1, "analytics": 1})
    extra_env: dict[str, str] = field(default_factory=dict)
    database_suffix: str = ""

    @classmethod
    def from_env(cls) -> StackConfig:
        env = os.environ
        return cls(
            data_dir=Path(env.get("TURNOUT_DATA_DIR", str(REPO / ".turnout"))),
            checkin_port=int(env.get("CHECKIN_PORT", "8001")),
            followup_port=int(env.get("FOLLOWUP_PORT", "8002")),
            analytics_port=int(env.get("ANALYTICS_PORT", "8003")),
            kafka_port=int(env.get("KAFKA_PORT", "9092")),
            mongodb_port=int(env.get("MONGODB_PORT", "27017")),
            kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            mongodb_uri=env.get("MONGODB_URI") or None,
            partitions=int(env.get("TURNOUT_TOPIC_PARTITIONS", "6")),
        )

    @classmethod
    def on_free_ports(cls, data_dir: Path, extra_env: dict[str, str] | None = None) -> StackConfig:
        """A stack beside any other (tests, benchmarks): every port free, quiet logs."""
        return cls(
            data_dir=data_dir,
            checkin_port=free_port(),
            followup_port=free_port(),
            analytics_port=free_port(),
            kafka_port=free_port(),
            mongodb_port=free_port(),
            extra_env={"LOG_LEVEL": "WARNING", **(extra_env or {})},
        )

    def port_of(self, service: str) -> int:
        return {"checkin": self.checkin_port, "followup": self.followup_port, "analytics": self.analytics_port}[service]

    def url_of(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port_of(service)}"

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap_servers or f"127.0.0.1:{self.kafka_port}"

    @property
    def mongo(self) -> str:
        return self.mongodb_uri or database_uri(self.mongodb_port)


class Stack:
    """Starts and stops every process; ``children`` maps ``"<service>-<process>"`` to its Child."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.log_dir = config.data_dir / "logs"
        self.children: dict[str, Child] = {}
        self._prom_dir = Path(tempfile.mkdtemp(prefix="turnout-prometheus-"))

    # -- environment ----------------------------------------------------------
    def service_env(self, service: str) -> dict[str, str]:
        cfg = self.config
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": cfg.bootstrap,
            "MONGODB_URI": cfg.mongo,
            "TURNOUT_TOPIC_PARTITIONS": str(cfg.partitions),
            "TURNOUT_PUBLIC_URL_CHECKIN": cfg.url_of("checkin"),
            "TURNOUT_PUBLIC_URL_FOLLOWUP": cfg.url_of("followup"),
            "TURNOUT_PUBLIC_URL_ANALYTICS": cfg.url_of("analytics"),
            "PORT": str(cfg.port_of(service)),
            "BIND": f"127.0.0.1:{cfg.port_of(service)}",
            "WEB_CONCURRENCY": str(cfg.web_workers.get(service, 1)),
            "PROMETHEUS_MULTIPROC_DIR": str(self._prom_dir / service),
            "PYTHONUNBUFFERED": "1",
        }
        if cfg.database_suffix:
            for name in ("checkin", "followup", "analytics"):
                env[f"{name.upper()}_MONGODB_DATABASE"] = f"turnout_{name}{cfg.database_suffix}"
        env.update(cfg.extra_env)
        return env

    def argv(self, service: str, process: str) -> list[str]:
        if process == "web":
            return [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(REPO / "services" / service / "gunicorn.conf.py"),
                f"{service}.wsgi:app",
            ]
        return [sys.executable, "-m", f"{service}.entrypoints.{process}"]

    # -- lifecycle ------------------------------------------------------------
    def start_infrastructure(self) -> None:
        cfg = self.config
        if cfg.kafka_bootstrap_servers is None:
            self.children["kafka"] = start_broker(cfg.kafka_port, self.log_dir)
        if cfg.mongodb_uri is None:
            self.children["mongodb"] = start_database(cfg.mongodb_port, cfg.data_dir / "mongodb", self.log_dir)
        from turnout_common.kafka import ensure_topics

        ensure_topics(cfg.bootstrap, cfg.partitions)

    def load_demo(self, quiet: bool = False, timeout: float = 300) -> None:
        """Load the demo organization (idempotent) through checkin's CLI."""
        subprocess.run(
            [
                sys.executable,
                "-m",
                "checkin.entrypoints.cli",
                "load-demo",
                "--email",
                DEMO_EMAIL,
                "--password",
                DEMO_PASSWORD,
            ],
            env={**os.environ, **self.service_env("checkin")},
            check=True,
            capture_output=quiet,
            timeout=timeout,
        )

    def start_process(self, service: str, process: str) -> Child:
        name = f"{service}-{process}"
        env = self.service_env(service)
        # Each relay and worker keeps its own heartbeat file (what a liveness probe reads).
        env.setdefault("TURNOUT_HEARTBEAT_FILE", str(self.log_dir / f"{name}.alive"))
        child = Child(name, self.argv(service, process), self.log_dir / f"{name}.log", env=env)
        self.children[name] = child.start()
        return child

    def restart(self, name: str) -> Child:
        """Start ``"<service>-<process>"`` again after it died (what a supervisor does);
        a child still alive is stopped first."""
        old = self.children[name]
        old.stop()
        service, process = name.split("-", 1)
        return self.start_process(service, process)

    def start_services(self) -> None:
        for service, processes in PROCESSES.items():
            for process in processes:
                self.start_process(service, process)

    def wait_ready(self, timeout: float = 60.0) -> None:
        for service in PROCESSES:
            url = f"{self.config.url_of(service)}/readyz"
            web = self.children.get(f"{service}-web")

            def ready(url: str = url) -> bool:
                try:
                    return requests.get(url, timeout=2).status_code == 200
                except requests.RequestException:
                    return False

            wait_until(ready, timeout, f"{url} to answer 200", web)

    def start(self) -> Stack:
        self.start_infrastructure()
        self.start_services()
        self.wait_ready()
        return self

    def stop(self) -> None:
        # Services first (they drain to the broker and database), then infrastructure.
        services = [c for name, c in self.children.items() if name not in ("kafka", "mongodb")]
        for child in services:
            child.signal(15)
        for child in services:
            child.stop()
        for name in ("kafka", "mongodb"):
            if name in self.children:
                self.children[name].stop()
        shutil.rmtree(self._prom_dir, ignore_errors=True)
