"""On a cluster whose topics are declared as KafkaTopic resources (deploy/k8s), services neither
create nor alter topics: their Kafka users are not allowed to, and the operator owns the settings."""

from __future__ import annotations

from onegrid.kafka.admin import ensure_topics
from onegrid.settings import KafkaSettings
from onegrid.topics import CATALOGUE


async def test_ensure_topics_leaves_topics_alone_when_they_are_managed_outside() -> None:
    # Nothing listens on port 1: any admin call would fail to connect.
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1", manage_topics=False)
    assert await ensure_topics(kafka, CATALOGUE) == {}


def test_managing_topics_is_the_default_and_read_from_the_environment(monkeypatch) -> None:
    assert KafkaSettings().manage_topics is True
    monkeypatch.setenv("ONEGRID_KAFKA_MANAGE_TOPICS", "false")
    assert KafkaSettings().manage_topics is False
