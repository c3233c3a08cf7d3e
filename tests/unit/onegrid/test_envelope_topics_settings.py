from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from onegrid.envelope import CloudEvent, get_header
from onegrid.kafka.policy import DlqGuard, DlqLimitExceeded
from onegrid.settings import KafkaSettings, ServiceSettings
from onegrid.topics import CATALOGUE, catalogue, dispatch_orders_topic


def test_cloudevent_round_trips_through_headers() -> None:
    ev = CloudEvent(
        type="cn.onegrid.case.reported.v1",
        source="/onegrid/intake",
        subject="C-1",
        time=datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
        extensions={"network": "env"},
    )
    back = CloudEvent.from_headers(ev.headers())
    assert back == ev
    assert get_header(ev.headers(), "ce_time") == "2026-11-30T08:00:00Z"


def test_raw_legacy_headers_are_no_cloudevent() -> None:
    assert CloudEvent.from_headers([("x", b"y")]) is None


def test_topic_names_are_the_public_interface() -> None:
    names = {t.name for t in CATALOGUE}
    assert names == {
        "legacy.env.hj212.v1",
        "legacy.emergency.cap.v1",
        "legacy.safety.v1",
        "legacy.party.v1",
        "legacy.open311.v1",
        "legacy.patrol.v1",
        "cases.v1",
        "intake.dlq.v1",
        "intake.quarantine.v1",
        "intake.state.v1",
        "intake.ledger.v1",
        "intake.correlate.v1",
        "intake.correlate.state.v1",
        "dispatch.dlq.v1",
        "evaluation.dlq.v1",
        "open311.dlq.v1",
        "audit.dlq.v1",
        "grid.registry.v1",
        "dispatch.feedback.v1",
        "case.lifecycle.v1",
        "audit.heads.v1",
        "outbox.passes.v1",
    }
    registry = next(t for t in CATALOGUE if t.name == "grid.registry.v1")
    assert registry.config()["cleanup.policy"] == "compact"
    assert dispatch_orders_topic("chengguan") == "dispatch.orders.chengguan.v1"
    assert "dispatch.orders.shuiwu.v1" in {t.name for t in catalogue(["shuiwu"])}
    with pytest.raises(ValueError):
        dispatch_orders_topic("Bad Code!")


def test_settings_fail_fast_with_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://x")
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        ServiceSettings()
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h:5/db")
    assert ServiceSettings().database_url == "postgresql+asyncpg://u@h:5/db"
    with pytest.raises(ValidationError, match="SASL_USERNAME"):
        KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256")


def test_dlq_guard_ratio() -> None:
    g = DlqGuard(max_ratio=0.5, min_sample=10, window=10)
    g.observe([True, False] * 5)  # exactly 50 %: allowed
    with pytest.raises(DlqLimitExceeded, match="limit 50%"):
        g.observe([True, True])


def test_cluster_topic_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEGRID_KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("ONEGRID_KAFKA_MIN_INSYNC_REPLICAS", "2")
    monkeypatch.setenv("ONEGRID_KAFKA_TOPIC_PARTITIONS", '{"cases.v1": 12}')
    k = KafkaSettings()
    cases = next(t for t in CATALOGUE if t.name == "cases.v1")
    on = cases.on_cluster(
        replication=k.replication_factor,
        min_insync_replicas=k.min_insync_replicas,
        partitions=k.topic_partitions,
    )
    assert (on.replication, on.partitions, on.config()["min.insync.replicas"]) == (3, 12, "2")
    monkeypatch.setenv("ONEGRID_KAFKA_MIN_INSYNC_REPLICAS", "4")
    with pytest.raises(ValidationError, match="MIN_INSYNC_REPLICAS"):
        KafkaSettings()
