"""The settings every service shares, read from the environment."""

from __future__ import annotations

import dataclasses

import pytest

from turnout_common import config
from turnout_common.config import PublicUrls, ServiceSettings, SettingError


@dataclasses.dataclass(frozen=True, slots=True)
class ExampleSettings(ServiceSettings):
    extra: int


def _clear(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "MONGODB_URI",
        "KAFKA_BOOTSTRAP_SERVERS",
        "TURNOUT_SECRET_KEY",
        "TURNOUT_TOPIC_PARTITIONS",
        "LOG_LEVEL",
        "TURNOUT_TRUST_PROXY",
        "FOLLOWUP_MONGODB_DATABASE",
        "FOLLOWUP_MAX_BODY_BYTES",
        "FOLLOWUP_CONSUMER_GROUP",
        *map(config.public_url_variable, config.SERVICES),
    ):
        monkeypatch.delenv(name, raising=False)


def test_local_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear(monkeypatch)
    settings = ExampleSettings(**config.service_values("followup"), extra=1)
    assert settings.service == "followup"
    assert settings.database == "turnout_followup"
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.secret_key == config.DEV_SECRET_KEY
    assert settings.topic_partitions == 6 and settings.log_level == "INFO"
    assert settings.public_url == "http://127.0.0.1:8002"
    assert settings.public_urls.checkin == "http://127.0.0.1:8001"
    assert settings.public_urls.configured == ()
    assert settings.max_body_bytes == config.DEFAULT_MAX_BODY_BYTES
    assert not settings.trust_proxy
    assert config.consumer_group("followup") == "turnout-followup"


def test_values_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear(monkeypatch)
    monkeypatch.setenv("FOLLOWUP_MONGODB_DATABASE", "other")
    monkeypatch.setenv("FOLLOWUP_MAX_BODY_BYTES", "4096")
    monkeypatch.setenv("TURNOUT_PUBLIC_URL_FOLLOWUP", "https://followup.example.org/")
    monkeypatch.setenv("TURNOUT_PUBLIC_URL_ANALYTICS", "https://analytics.example.org")
    monkeypatch.setenv("TURNOUT_TRUST_PROXY", "1")
    monkeypatch.setenv("FOLLOWUP_CONSUMER_GROUP", "g2")
    settings = ExampleSettings(**config.service_values("followup", max_body_bytes=99_999), extra=2)
    assert settings.database == "other" and settings.max_body_bytes == 4096
    assert settings.public_url == "https://followup.example.org"
    assert settings.public_urls.configured == ("https://followup.example.org/", "https://analytics.example.org")
    assert settings.trust_proxy
    assert config.consumer_group("followup") == "g2"
    assert dataclasses.replace(settings, database="third").database == "third"


def test_a_service_default_for_the_body_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear(monkeypatch)
    assert config.service_values("followup", max_body_bytes=16 * 1024 * 1024)["max_body_bytes"] == 16 * 1024 * 1024
    monkeypatch.setenv("FOLLOWUP_MAX_BODY_BYTES", "10")
    with pytest.raises(SettingError):
        config.service_values("followup")


def test_public_urls_by_service() -> None:
    urls = PublicUrls(checkin="https://c", followup="https://f", analytics="https://a")
    assert [urls.of(name) for name in config.SERVICES] == ["https://c", "https://f", "https://a"]
