"""Cluster mode of the local stack: node configuration, topic replication and instance layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.kafka import KafkaCluster, cluster_config
from devstack.stack import SERVICES, Instance, Stack, for_cluster
from onegrid.topics import catalogue


def test_cluster_nodes_share_one_quorum_and_cluster_id(tmp_path: Path) -> None:
    cluster = KafkaCluster(tmp_path / "c", size=3, base_port=30000)
    assert cluster.bootstrap == "127.0.0.1:30000,127.0.0.1:30002,127.0.0.1:30004"
    voters = "1@127.0.0.1:30001,2@127.0.0.1:30003,3@127.0.0.1:30005"
    ids = {b.cluster_id for b in cluster.brokers}
    assert len(ids) == 1 and None not in ids
    for node_id, broker in enumerate(cluster.brokers, start=1):
        broker.data_dir.mkdir(parents=True)
        props = _properties(broker.write_config())
        assert props["node.id"] == str(node_id)
        assert props["controller.quorum.voters"] == voters
        assert props["min.insync.replicas"] == "2"
        assert props["default.replication.factor"] == "3"
        assert props["unclean.leader.election.enable"] == "false"
        assert props["transaction.state.log.min.isr"] == "2"
    # The cluster id survives a new handle on the same folder (a restart formats nothing).
    assert KafkaCluster(tmp_path / "c", size=3, base_port=30000).brokers[0].cluster_id == ids.pop()


def test_small_cluster_never_asks_more_replicas_than_nodes() -> None:
    two = cluster_config(2)
    assert "default.replication.factor=2" in two and "min.insync.replicas=2" in two


def test_topics_on_a_cluster_get_replication_3_and_min_isr_2() -> None:
    specs = for_cluster(catalogue(), 3)
    assert {s.replication for s in specs} == {3}
    assert all(s.config()["min.insync.replicas"] == "2" for s in specs)
    # compaction and retention are kept
    assert {s.name: s.config()["cleanup.policy"] for s in specs} == {
        s.name: s.config()["cleanup.policy"] for s in catalogue()
    }
    assert for_cluster(catalogue(), 1) == catalogue()


def test_one_instance_keeps_todays_names_and_ports() -> None:
    intake = next(s for s in SERVICES if s.name == "intake")
    assert (Instance(intake, 0).name, Instance(intake, 0).port) == ("intake", intake.port)
    assert (Instance(intake, 2).name, Instance(intake, 2).port) == ("intake-2", intake.port + 200)
    assert intake.instance_env == "ONEGRID_INTAKE_INSTANCE_ID"


def test_layout_from_variables_every_consumer_service_scales(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEGRID_RUN", str(tmp_path))
    monkeypatch.setenv("ONEGRID_BROKERS", "3")
    monkeypatch.setenv("ONEGRID_INSTANCES", "2")
    stack = Stack()
    names = [i.name for i in stack.all_instances()]
    assert names.count("console") == 1 and "console-1" not in names
    for svc in ("grid-registry", "intake", "dispatch", "audit", "evaluation"):
        assert svc in names and f"{svc}-1" in names
    assert len(stack.bootstrap.split(",")) == 3
    env = stack.instance_env(Instance(next(s for s in SERVICES if s.name == "intake"), 1), human_logs=False)
    assert env["ONEGRID_INTAKE_INSTANCE_ID"] == "1" and env["ONEGRID_INTAKE_HTTP_PORT"].endswith("102")
    stack._save_layout()
    monkeypatch.setenv("ONEGRID_BROKERS", "")
    monkeypatch.setenv("ONEGRID_INSTANCES", "")
    assert (Stack().brokers, Stack().instances) == (3, 2)  # down/status find the running layout


def test_default_layout_is_one_broker_one_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEGRID_RUN", str(tmp_path))
    monkeypatch.delenv("ONEGRID_BROKERS", raising=False)
    monkeypatch.delenv("ONEGRID_INSTANCES", raising=False)
    monkeypatch.delenv("ONEGRID_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    stack = Stack()
    assert stack.cluster is None and stack.nodes == [stack.kafka]
    assert [i.name for i in stack.all_instances()] == [s.name for s in SERVICES]


def _properties(path: Path) -> dict[str, str]:
    props: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            props[k.strip()] = v.strip()  # later keys win, as in java.util.Properties
    return props
