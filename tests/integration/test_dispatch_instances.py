"""Dispatch on the real broker and PostgreSQL with two instances and simulated departments: one that
never answers (orders on its Kafka topic) and one whose webhook fails every other request. One
instance is SIGKILLed mid-run. Every case ends closed or escalated at the top; every deadline fired
exactly once; lifecycle events match the database transitions one for one."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from support.auth import ADMIN
from support.waiting import wait_until

from devstack.paths import free_port
from dispatch.domain import signature

from .conftest import read_all

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).parent / "workers" / "dispatch_instance.py"
_spec = importlib.util.spec_from_file_location("dispatch_sample", ROOT / "tests/unit/dispatch/sample.py")
assert _spec and _spec.loader
sample = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sample)

SECRET = "flaky-dept-shared-secret"
N_CASES = 12


def lifecycle_validator() -> Draft202012Validator:
    schemas = [json.loads(p.read_text(encoding="utf-8")) for p in (ROOT / "contracts/schemas").glob("*.json")]
    registry = Registry().with_resources([(s["$id"], Resource.from_contents(s)) for s in schemas])
    schema = json.loads((ROOT / "contracts/schemas/lifecycle-event.v1.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema, registry=registry)


def registry() -> list[dict[str, Any]]:
    d = sample.department
    return [
        d("hj-gov", "district", "321003"),
        d("dead-dept", "district", "321003", parent="hj-gov"),
        d("flaky-dept", "district", "321003", parent="hj-gov"),
        d("xs-command", "street", "321003009"),
        d("hj-command", "district", "321003"),
        d("yz-command", "city", "321000"),
        sample.rule("to-dead", ["city.street_vending"], ["dead-dept"]),
        sample.rule("to-flaky", ["city.illegal_construction"], ["flaky-dept"]),
        sample.sla("default", 3, 60),
        sample.grid(),
    ]


class FlakyDepartment:
    """A webhook endpoint that fails every other request; on success it acknowledges and resolves the
    order on the feedback topic. Checks the signature and the replay window of every request."""

    def __init__(self, producer: AIOKafkaProducer, feedback_topic: str) -> None:
        self.producer, self.feedback_topic = producer, feedback_topic
        self.requests = 0
        self.bad_signatures = 0
        self.untraced = 0  # requests without a W3C traceparent: the department could not join the trace
        self.answered: set[str] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        headers = {
            k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head.split("\r\n")[1:] if h)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests += 1
        if not re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", headers.get("traceparent", "")):
            self.untraced += 1
        ok = self.requests % 2 == 0
        problem = signature.verify(
            [SECRET.encode()],
            headers.get(signature.TIMESTAMP.lower(), ""),
            headers.get(signature.SIGNATURE.lower(), ""),
            headers.get(signature.DELIVERY.lower(), ""),
            body,
            now=datetime.now(UTC).timestamp(),
        )
        if problem:
            self.bad_signatures += 1
            ok = False
        writer.write(
            b"HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            % (b"200 OK" if ok else b"500 Oops")
        )
        await writer.drain()
        writer.close()
        if ok:
            await self.answer(json.loads(body))

    async def answer(self, order: dict[str, Any]) -> None:
        if order["order_id"] in self.answered:
            return
        self.answered.add(order["order_id"])
        for kind in ("acknowledge", "resolve"):
            fb = {
                "feedback_id": str(uuid.uuid4()),
                "order_id": order["order_id"],
                "case_id": order["case_id"],
                "department": "flaky-dept",
                "kind": kind,
                "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "actor": {"kind": "department", "id": "flaky-dept", "display": "flaky"},
                "note": None,
                "evidence": [
                    {
                        "ref": "evidence/x.jpg",
                        "media_type": "image/jpeg",
                        "sha256": "0" * 64,
                        "taken_at": None,
                    }
                ]
                if kind == "resolve"
                else [],
                "return_reason": None,
            }
            data = json.dumps(fb).encode()
            await self.producer.send_and_wait(self.feedback_topic, data, key=order["case_id"].encode())
            # a repeated feedback message changes nothing
            await self.producer.send_and_wait(self.feedback_topic, data, key=order["case_id"].encode())


def start_instance(port: int, instance: str, env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    log = (logs / f"dispatch-{instance}.log").open("wb")  # kept for diagnosis of a failure
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(port), instance], env={**os.environ, **env}, stdout=log, stderr=log
    )


async def test_two_instances_one_killed_every_case_closes_or_escalates(
    kafka_settings, topics, database_url, tmp_path
) -> None:
    schema = f"dispatch_{uuid.uuid4().hex[:8]}"
    cases_t, feedback_t = await topics("cases", partitions=3), await topics("feedback", partitions=3)
    lifecycle_t, registry_t = await topics("lifecycle", partitions=6), await topics("registry")
    orders_prefix = f"t.orders.{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(**kafka_settings.client_kwargs())
    await producer.start()
    flaky = FlakyDepartment(producer, feedback_t)
    server = await asyncio.start_server(flaky.handle, "127.0.0.1", 0)
    hook_port = server.sockets[0].getsockname()[1]
    env = {
        "DATABASE_URL": database_url,
        "ONEGRID_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "ONEGRID_DISPATCH_DB_SCHEMA": schema,
        "ONEGRID_DISPATCH_CASES_TOPIC": cases_t,
        "ONEGRID_DISPATCH_FEEDBACK_TOPIC": feedback_t,
        "ONEGRID_DISPATCH_LIFECYCLE_TOPIC": lifecycle_t,
        "ONEGRID_DISPATCH_REGISTRY_TOPIC": registry_t,
        "ONEGRID_DISPATCH_ORDERS_TOPIC": orders_prefix + ".{department}",
        "ONEGRID_DISPATCH_DLQ_TOPIC": f"{cases_t}.dlq",
        "ONEGRID_DISPATCH_WEBHOOKS": json.dumps(
            {"flaky-dept": {"url": f"http://127.0.0.1:{hook_port}/orders", "secret": SECRET}}
        ),
        "ONEGRID_DISPATCH_WEBHOOK_MAX_BACKOFF_S": "2",
        "ONEGRID_DISPATCH_DEADLINE_POLL_S": "0.2",
        "ONEGRID_OTEL_LOG_JSON": "false",
    }
    url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = create_async_engine(url, connect_args={"server_settings": {"search_path": schema}})
    ports = [free_port(), free_port()]
    instances = [start_instance(ports[0], "a", env, tmp_path), start_instance(ports[1], "b", env, tmp_path)]
    try:
        for rec in registry():
            await producer.send_and_wait(
                registry_t, json.dumps(rec).encode(), key=f"{rec['kind']}:{rec['code']}".encode()
            )
        case_ids = []
        for i in range(N_CASES):
            category = "city.street_vending" if i % 2 == 0 else "city.illegal_construction"
            ev = sample.case_event(category=category, tier="street")
            case_ids.append(ev["case_id"])
            await producer.send_and_wait(cases_t, json.dumps(ev).encode(), key=ev["case_id"].encode())

        async def scalar(sql: str) -> Any:
            try:
                async with engine.connect() as conn:
                    return await conn.scalar(text(sql))
            except Exception:
                return None  # schema not migrated yet

        async def some_fired() -> bool:
            return (await scalar("SELECT count(*) FROM deadlines WHERE status = 'fired'") or 0) >= 4

        async def both_ready() -> bool:
            async with httpx.AsyncClient(timeout=2) as http:
                for port in ports:
                    try:
                        if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code != 200:
                            return False
                    except httpx.HTTPError:
                        return False
            return True

        # The deadlines' clock starts once both instances serve: on a loaded machine an instance's
        # start-up alone (imports, migrations, catching up the registry) can take most of a minute.
        await wait_until(both_ready, timeout_s=180, interval_s=0.5, what="both dispatch instances ready")
        await wait_until(some_fired, timeout_s=40, interval_s=0.5, what="the first deadlines to fire")
        instances[0].send_signal(signal.SIGKILL)
        instances[0].wait()
        killed_at = datetime.now(UTC)

        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{ports[1]}", timeout=10, headers=ADMIN
        ) as api:

            async def settled() -> bool:
                async with engine.connect() as conn:
                    resolved = (
                        (await conn.execute(text("SELECT case_id::text FROM cases WHERE state = 'resolved'")))
                        .scalars()
                        .all()
                    )
                for cid in resolved:  # the grid worker verifies on site: a pass closes
                    await api.post(
                        f"/v1/cases/{cid}/verify",
                        json={"actor": {"kind": "staff", "id": "grid/0007", "display": "张三"}},
                    )
                open_ = await scalar(
                    "SELECT count(*) FROM cases c WHERE state NOT IN ('closed', 'cancelled') AND NOT "
                    "(state = 'escalated' AND NOT EXISTS (SELECT 1 FROM deadlines d WHERE d.case_id = c.case_id AND d.status = 'running'))"
                )
                total = await scalar("SELECT count(*) FROM cases")
                return total == N_CASES and open_ == 0

            await wait_until(
                settled, timeout_s=90, interval_s=0.5, what="every case to close or escalate to the top"
            )
            overdue = (await api.get("/v1/cases", params={"overdue": "true"})).json()
            stuck = (await api.get("/v1/deliveries/stuck")).json()

        async with engine.connect() as conn:
            transitions = (
                await conn.execute(
                    text("SELECT event_id::text, case_id::text, seq, deadline_id::text, at FROM transitions")
                )
            ).all()
            fired = (
                (await conn.execute(text("SELECT deadline_id::text FROM deadlines WHERE status = 'fired'")))
                .scalars()
                .all()
            )
            states = dict((await conn.execute(text("SELECT case_id::text, state FROM cases"))).all())
            running_overdue = await conn.scalar(
                text(
                    "SELECT count(*) FROM deadlines WHERE status = 'running' AND due_at < now() - interval '3 seconds'"
                )
            )
        events = await read_all(kafka_settings, lifecycle_t, expect=len(transitions), timeout_s=30)
    finally:
        for p in instances:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in instances:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        server.close()
        await producer.stop()
        await engine.dispose()

    # every case reached a terminal state or an escalation at the top
    assert set(states) == set(case_ids)
    assert {states[c] for c in case_ids[0::2]} == {"escalated"}, (
        "the silent department's cases climb to the top"
    )
    assert {states[c] for c in case_ids[1::2]} <= {"closed", "escalated"}
    assert "closed" in {states[c] for c in case_ids[1::2]}
    assert {c["case_id"] for c in overdue} >= set(case_ids[0::2])
    assert running_overdue == 0, "a deadline was lost"
    assert flaky.bad_signatures == 0 and flaky.requests >= 2
    assert flaky.untraced == 0
    assert isinstance(stuck, list)

    # each deadline fired exactly once, and the survivor took over after the kill
    by_deadline = Counter(t.deadline_id for t in transitions if t.deadline_id)
    assert set(by_deadline) == set(fired) and set(by_deadline.values()) == {1}
    assert any(t.deadline_id and t.at > killed_at for t in transitions)
    assert len(fired) >= 3 * (N_CASES // 2)  # street -> district -> city -> top, per silent case

    # lifecycle events match database transitions one for one
    validator = lifecycle_validator()
    bodies = {}
    for r in events:
        body = json.loads(r.value)
        assert not list(validator.iter_errors(body)), body
        assert bodies.setdefault(body["event_id"], body) == body, "an event id was reused for another body"
    db = {t.event_id: (t.case_id, t.seq) for t in transitions}
    assert {e: (b["case_id"], b["seq"]) for e, b in bodies.items()} == db
    print(
        f"transitions={len(transitions)} events={len(events)} duplicates={len(events) - len(bodies)} fired={len(fired)}"
    )
