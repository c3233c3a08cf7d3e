"""The simulated departments on the real broker: orders in, feedback out that the contract and
dispatch accept; a silent department sends nothing; a webhook department answers only signed
deliveries (a bad signature is 401) and answers them through dispatch's REST API."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import time
import uuid
from pathlib import Path

import httpx
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from devstack.paths import free_port
from dispatch.domain import signature
from dispatch.domain.facts import decode_feedback
from onegrid.kafka.admin import ensure_topics
from onegrid.topics import TopicSpec
from simulators.departments import QuietServer, run_departments
from simulators.domain.answers import Behaviour
from simulators.endpoints import Endpoints

from .conftest import read_all

ROOT = Path(__file__).resolve().parents[2]
SECRET = "shichang-webhook-secret-16+"
QUICK = Behaviour(
    silent=frozenset({"chengguan"}),
    return_rate=0.0,
    acknowledge_after_s=(0.1, 0.3),
    progress_after_s=(0.1, 0.3),
    resolve_after_s=(0.1, 0.3),
)


def schema(name: str) -> Draft202012Validator:
    schemas = [json.loads(p.read_text(encoding="utf-8")) for p in (ROOT / "contracts/schemas").glob("*.json")]
    registry = Registry().with_resources([(s["$id"], Resource.from_contents(s)) for s in schemas])
    return Draft202012Validator(next(s for s in schemas if s["$id"].endswith(name)), registry=registry)


def order(department: str) -> dict:
    o = copy.deepcopy(schema("dispatch-order.v1.json").schema["examples"][0])
    o.update(order_id=str(uuid.uuid4()), case_id=str(uuid.uuid4()), department=department)
    schema("dispatch-order.v1.json").validate(o)
    return o


class FakeDispatchApi:
    """POST /v1/feedback as dispatch answers it: 200 for a body dispatch's decoder accepts."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.app = FastAPI()

        @self.app.post("/v1/feedback")
        async def feedback(request: Request) -> dict:
            body = await request.body()
            decode_feedback(body)  # raises (500) on anything dispatch would refuse
            self.received.append(json.loads(body))
            return {"outcome": "applied"}


async def test_departments_answer_orders_and_signed_webhooks(kafka_settings, topics) -> None:
    base = f"t.simorders{uuid.uuid4().hex[:8]}"
    names = {d: f"{base}.{d}.v1" for d in ("sifa", "chengguan", "shichang")}
    await ensure_topics(kafka_settings, [TopicSpec(n, partitions=1) for n in names.values()])
    feedback_topic = await topics("simfeedback")
    api, api_port, hook_port = FakeDispatchApi(), free_port(), free_port()
    api_server = QuietServer(uvicorn.Config(api.app, host="127.0.0.1", port=api_port, log_config=None))
    api_task = asyncio.create_task(api_server.serve())
    endpoints = Endpoints(kafka=kafka_settings, urls={"dispatch": f"http://127.0.0.1:{api_port}"})
    stop, ready = asyncio.Event(), asyncio.Event()
    run = asyncio.create_task(
        run_departments(
            endpoints,
            behaviour=QUICK,
            webhooks={"shichang": SECRET},
            webhook_port=hook_port,
            orders_pattern=re.escape(base) + r"\.[a-z_]+\.v1",
            feedback_topic=feedback_topic,
            group=f"sim.departments.{base}",
            stop=stop,
            ready=ready,
            handle_signals=False,
        )
    )
    try:
        await asyncio.wait_for(ready.wait(), timeout=60)
        orders = {d: [order(d)] for d in names} | {"sifa": [order("sifa"), order("sifa")]}
        producer = AIOKafkaProducer(**kafka_settings.client_kwargs())
        await producer.start()
        try:
            for dept, os_ in orders.items():
                for o in os_:
                    await producer.send_and_wait(
                        names[dept], json.dumps(o).encode(), key=o["case_id"].encode()
                    )
        finally:
            await producer.stop()

        # Kafka: sifa's two orders are acknowledged, progressed and resolved; chengguan is silent;
        # shichang's Kafka copy is left to its webhook.
        records = await read_all(kafka_settings, feedback_topic, expect=6, timeout_s=60)
        bodies = [json.loads(r.value) for r in records]
        feedback_schema = schema("feedback.v1.json")
        for r, b in zip(records, bodies, strict=True):
            feedback_schema.validate(b)
            decode_feedback(r.value)
            assert r.key.decode() == b["case_id"]
        assert {b["department"] for b in bodies} == {"sifa"}
        for o in orders["sifa"]:
            kinds = [b["kind"] for b in bodies if b["order_id"] == o["order_id"]]
            assert kinds == ["acknowledge", "progress", "resolve"]

        # Webhooks: a bad signature is refused, a good one answered through the REST API.
        hook = f"http://127.0.0.1:{hook_port}/webhooks/shichang"
        body = json.dumps(orders["shichang"][0]).encode()
        ts = int(time.time())
        delivery = str(uuid.uuid4())
        good = {
            signature.TIMESTAMP: str(ts),
            signature.SIGNATURE: signature.sign(SECRET.encode(), ts, delivery, body),
            signature.DELIVERY: delivery,
            "content-type": "application/json",
        }
        bad = {**good, signature.SIGNATURE: signature.sign(b"not-the-shared-secret", ts, delivery, body)}
        async with httpx.AsyncClient(timeout=10) as client:
            refused = await client.post(hook, content=body, headers=bad)
            assert refused.status_code == 401 and refused.json()["error"] == "signature.mismatch"
            accepted = await client.post(hook, content=body, headers=good)
            assert accepted.status_code == 200
        for _ in range(200):
            if len(api.received) >= 3:
                break
            await asyncio.sleep(0.1)
        assert [b["kind"] for b in api.received] == ["acknowledge", "progress", "resolve"]
        for b in api.received:
            feedback_schema.validate(b)
            assert (b["department"], b["order_id"]) == ("shichang", orders["shichang"][0]["order_id"])
    finally:
        stop.set()
        tally = await asyncio.wait_for(run, timeout=30)
        api_server.should_exit = True
        await api_task
    assert tally["orders left unanswered"] == 1  # chengguan's
    assert len(await read_all(kafka_settings, feedback_topic, timeout_s=5)) == 6
