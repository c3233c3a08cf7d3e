"""Where the simulators find the system: flag, then environment, then .run/endpoints.json."""

from __future__ import annotations

import json

import pytest

from simulators.endpoints import load


def test_flags_beat_the_environment_which_beats_the_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "endpoints.json").write_text(
        json.dumps(
            {
                "kafka_bootstrap": "file:9092",
                "services": {"intake": "http://file:1", "dispatch": "http://file:2"},
            }
        )
    )
    monkeypatch.setenv("ONEGRID_RUN", str(tmp_path))
    monkeypatch.delenv("ONEGRID_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("ONEGRID_DISPATCH_URL", raising=False)
    e = load()
    assert (e.kafka.bootstrap_servers, e.url("intake"), e.url("dispatch")) == (
        "file:9092",
        "http://file:1",
        "http://file:2",
    )
    assert e.url("grid-registry") == "http://127.0.0.1:8001"
    monkeypatch.setenv("ONEGRID_KAFKA_BOOTSTRAP_SERVERS", "env:9092")
    monkeypatch.setenv("ONEGRID_DISPATCH_URL", "http://env:2/")
    e = load()
    assert (e.kafka.bootstrap_servers, e.url("dispatch")) == ("env:9092", "http://env:2")
    e = load("flag:9092", dispatch="http://flag:2")
    assert (e.kafka.bootstrap_servers, e.url("dispatch")) == ("flag:9092", "http://flag:2")
