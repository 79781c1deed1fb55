"""The local stack's SecantusDB runs with the WiredTiger cache the README
promises: 128 MB by default (with SecantusDB's own 1 GB default, registering
into a store of a few thousand people stalled for 80-90 s; bench/README.md,
"Fifth pass"), or ``TURNOUT_DB_CACHE_SIZE``. WiredTiger writes the settings a
database was created with to ``WiredTiger.basecfg`` in its directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pymongo import MongoClient

from turnout_local.processes import database_uri, free_port, start_database


def _cache_size_of_new_database(tmp_path: Path) -> str:
    port = free_port()
    database = start_database(port, tmp_path / "mongodb", tmp_path / "logs")
    try:
        client: MongoClient[dict[str, object]] = MongoClient(database_uri(port), serverSelectionTimeoutMS=10_000)
        try:
            client.turnout_test.things.insert_one({"_id": "one"})
            assert client.turnout_test.things.count_documents({}) == 1
        finally:
            client.close()
        settings = (tmp_path / "mongodb" / "WiredTiger.basecfg").read_text()
    finally:
        database.stop()
    found = re.search(r"^cache_size=(\S+)$", settings, re.MULTILINE)
    assert found, settings
    return found.group(1)


def test_the_local_database_runs_with_a_128_mb_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TURNOUT_DB_CACHE_SIZE", raising=False)
    assert _cache_size_of_new_database(tmp_path) == "128M"


def test_its_cache_size_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_DB_CACHE_SIZE", "256M")
    assert _cache_size_of_new_database(tmp_path) == "256M"
