"""The topic access table (onegrid.topic_access) against the catalogue and each service's wiring: the
ACLs generated from it must let every service do what its code does, and nothing more."""

from __future__ import annotations

import re

import pytest

from devstack.stack import SERVICES
from onegrid.topic_access import SERVICE_TOPICS, access_of, department_access
from onegrid.topics import catalogue, dispatch_orders_topic

TOPICS = [t.name for t in catalogue(["chengguan", "jiedao_zhifa"])]


def test_every_service_of_the_stack_has_its_topics_declared() -> None:
    assert sorted(a.service for a in SERVICE_TOPICS) == sorted(s.name for s in SERVICES)


def test_every_catalogue_topic_has_a_writer_and_every_named_topic_is_in_the_catalogue() -> None:
    writers = [*SERVICE_TOPICS, department_access("chengguan")]
    for topic in TOPICS:
        if topic.startswith("legacy.") and topic != "legacy.open311.v1":
            continue  # written by the legacy networks' gateways, outside the services
        if topic == "dispatch.feedback.v1":
            continue  # written by the departments
        assert any(a.may_write(topic) for a in writers), topic
    for a in SERVICE_TOPICS:
        for t in (*a.reads, *a.writes):
            assert any(t.matches(name) for name in TOPICS), f"{a.service}: {t} names no catalogue topic"


def test_intake_reads_its_feeds_and_writes_its_outputs() -> None:
    from intake.pipeline import IntakeTopics

    topics = IntakeTopics()
    intake = access_of("intake")
    assert all(intake.may_read(feed) for feed in topics.feeds)
    assert intake.may_read(topics.cases) and intake.may_read(topics.state)
    for out in (topics.cases, topics.state, "intake.dlq.v1", "intake.quarantine.v1"):
        assert intake.may_write(out), out
    assert intake.transactional
    assert not intake.may_write("case.lifecycle.v1")
    assert not intake.may_write("legacy.open311.v1")  # the Open311 service publishes residents' requests


def test_open311_publishes_its_feed_and_follows_cases_and_lifecycle() -> None:
    from open311.api import ApiSettings
    from open311.settings import Settings

    s, open311 = Settings(), access_of("open311")
    assert open311.may_write(ApiSettings().topic) and open311.may_write(s.dlq_topic)
    assert open311.may_read(s.cases_topic) and open311.may_read(s.lifecycle_topic)
    assert not open311.may_write("cases.v1") and not open311.transactional


def test_dispatch_reads_cases_and_feedback_and_writes_lifecycle_and_orders() -> None:
    from dispatch.settings import Settings

    s = Settings()
    dispatch = access_of("dispatch")
    assert all(dispatch.may_read(t) for t in (s.cases_topic, s.feedback_topic, s.registry_topic))
    assert dispatch.may_write(s.lifecycle_topic) and dispatch.may_write(s.dlq_topic)
    assert dispatch.may_write(s.orders_topic.format(department="chengguan"))
    assert not dispatch.may_write("cases.v1")


def test_audit_reads_exactly_what_its_tap_subscribes_and_writes_only_heads_and_its_dlq() -> None:
    from audit.settings import TAP_PATTERN

    audit = access_of("audit")
    for topic in TOPICS:
        assert audit.may_read(topic) == bool(re.match(TAP_PATTERN, topic)), topic
    assert [t for t in TOPICS if audit.may_write(t)] == ["audit.dlq.v1", "audit.heads.v1"]


def test_evaluation_console_and_registry_follow_their_settings() -> None:
    from console.bootstrap import followed_topics
    from console.settings import Settings as ConsoleSettings
    from evaluation.settings import Settings as EvaluationSettings
    from grid_registry.settings import Settings as RegistrySettings

    ev = EvaluationSettings()
    assert access_of("evaluation").may_read(ev.lifecycle_topic)
    assert access_of("evaluation").may_write(ev.dlq_topic)
    console = access_of("console")
    assert all(console.may_read(t.name) for t in followed_topics(ConsoleSettings()))
    assert console.may_write("legacy.env.hj212.v1")  # a replay goes back to the record's own topic
    assert not console.may_write("cases.v1")
    registry = access_of("grid-registry")
    changelog = RegistrySettings().changelog_topic
    assert registry.may_read(changelog) and registry.may_write(changelog)


@pytest.mark.parametrize("code", ["chengguan", "jiedao_zhifa"])
def test_a_department_reads_only_its_own_orders(code: str) -> None:
    dept = department_access(code)
    assert [t for t in TOPICS if dept.may_read(t)] == [dispatch_orders_topic(code)]
    assert [t for t in TOPICS if dept.may_write(t)] == ["dispatch.feedback.v1"]


def test_the_declared_consumer_groups_are_the_loops_each_bootstrap_adds(monkeypatch, tmp_path) -> None:
    """Each service's real bootstrap (nothing started: no broker is contacted), its loops recorded."""
    import importlib

    from onegrid.wiring import Wiring

    monkeypatch.setenv("ONEGRID_RUN", str(tmp_path))
    monkeypatch.setenv("ONEGRID_ENVIRONMENT", "development")  # keys generated under ONEGRID_RUN
    added: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    original = Wiring.add_loop

    def record(self: Wiring, **kw) -> None:  # type: ignore[no-untyped-def]
        added.setdefault(self.settings.service_name, []).append((kw["name"], tuple(kw["topics"])))
        original(self, **kw)

    monkeypatch.setattr(Wiring, "add_loop", record)
    for svc in SERVICES:
        importlib.import_module(f"{svc.module}.bootstrap").bootstrap()
    for a in SERVICE_TOPICS:
        assert sorted(added.get(a.service, [])) == sorted((g.loop, g.topics) for g in a.groups), a.service
        for g in a.groups:
            assert all(a.may_read(t) for t in g.topics), g
