"""Every metric a Grafana dashboard or a Prometheus rule of deploy/k8s names is in the services'
real /metrics: the whole stack on the session's broker and database (as `make up` runs it), a few
real legacy records through it (one case, one dead letter), then each service scraped."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer
from support.promql import named_metrics
from support.records import HOME, hj212_packet, party_diary, with_bad_crc

from devstack.paths import free_port
from onegrid.topics import LEGACY_ENV_HJ212, LEGACY_PARTY

from .conftest import Ground

pytestmark = pytest.mark.timeout(600)


def exported(base_urls: list[str]) -> set[str]:
    """Metric names with samples in the services' /metrics (Prometheus text format)."""
    names: set[str] = set()
    for base in base_urls:
        try:
            with urllib.request.urlopen(f"{base}/metrics", timeout=30) as r:
                text = r.read().decode()
        except (TimeoutError, urllib.error.URLError):
            continue  # a busy service (catching up at start) answers on a later round
        for line in text.splitlines():
            m = re.match(r"([a-zA-Z_:][\w:]*)(\{|\s)", line)
            if m and not line.startswith("#"):
                names.add(m.group(1))
    return names


async def send_records(bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        now = datetime.now(UTC)
        source = f"MQRJ7{uuid.uuid4().int % 10**12:012d}"
        await producer.send_and_wait(
            LEGACY_PARTY, party_diary(source, code="MQ05", wgs=HOME, when=now), key=source.encode()
        )
        broken = with_bad_crc(hj212_packet("88888880000001", now, {"a34004": 35.0}))
        await producer.send_and_wait(LEGACY_ENV_HJ212, broken, key=b"88888880000001")
    finally:
        await producer.stop()


def test_dashboards_and_rules_name_only_metrics_the_services_export(
    system_ground: Ground, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devstack import stack as stack_mod

    kafka_bootstrap, database_url = system_ground.kafka_bootstrap, system_ground.database_url

    wanted = named_metrics()
    assert len(wanted) >= 10
    monkeypatch.setenv("ONEGRID_RUN", str(tmp_path))
    monkeypatch.setenv("ONEGRID_KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("DATABASE_URL", database_url)
    # One department served by webhook (nothing listens there): its stuck-delivery gauge exists.
    hook = {"url": f"http://127.0.0.1:{free_port()}/hook", "secret": "s" * 24}
    monkeypatch.setenv("ONEGRID_DISPATCH_WEBHOOKS", json.dumps({"shichang": hook}))
    monkeypatch.setenv("ONEGRID_AUDIT_HEAD_INTERVAL_S", "1")
    monkeypatch.setenv("ONEGRID_DISPATCH_GAUGES_INTERVAL_S", "1")
    monkeypatch.setenv("ONEGRID_AUDIT_HEAD_CHECK_INTERVAL_S", "1")
    monkeypatch.setenv("ONEGRID_BRIDGES_HJ212_PORT", str(free_port()))
    for svc in stack_mod.SERVICES:
        monkeypatch.setenv(svc.port_env, str(free_port()))
    stack = stack_mod.Stack()
    try:
        stack.up()
        endpoints = json.loads((tmp_path / "endpoints.json").read_text())
        bases = list(endpoints["services"].values())
        asyncio.run(send_records(kafka_bootstrap))
        # Series appear as their events happen (a case registered, a dead letter, a head signed,
        # the gauges' next count): scrape until all are there, or report what is missing.
        deadline = time.monotonic() + 180
        missing = set(wanted)
        while missing and time.monotonic() < deadline:
            missing = set(wanted) - exported(bases)
            if missing:
                time.sleep(2)
        assert missing == set(), {name: sorted(wanted[name]) for name in missing}
    finally:
        stack.down()
