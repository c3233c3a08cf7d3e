"""The department kit on real parts: orders consumed from the session's Kafka (read_committed,
commits after handling), feedback bodies dispatch's own decoder and the contract accept, and the
webhook conformance checker against the simulated webhook department (passes) and a deliberately
broken one (fails, naming the cases)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import onegrid_departments as kit
from devstack.paths import free_port
from dispatch.domain.facts import decode_feedback
from onegrid_departments.check_webhook import check, sample_order
from onegrid_departments.consumer import consume_orders
from onegrid_departments.feedback import feedback_for
from simulators.departments import QuietServer
from simulators.webhook import webhook_app

from .test_simulators import order, schema

SECRET = "department-webhook-secret-for-tests"


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    server = QuietServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    for _ in range(600):  # uvicorn has no started event to wait on
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_orders_read_committed_and_committed_only_after_handling(kafka_settings, topics) -> None:
    topic = await topics("deptorders", partitions=1)
    orders = [order("chengguan") for _ in range(3)]
    producer = AIOKafkaProducer(transactional_id=f"t-{uuid.uuid4().hex}", **kafka_settings.client_kwargs())
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, json.dumps(orders[0]).encode(), key=orders[0]["case_id"].encode())
        await producer.begin_transaction()  # an order rolled back: a department must never see it
        await producer.send(topic, json.dumps(order("chengguan")).encode(), key=b"aborted")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"not an order", key=b"x")
            for o in orders[1:]:
                await producer.send(topic, json.dumps(o).encode(), key=o["case_id"].encode())
    finally:
        await producer.stop()

    group = f"chengguan.orders.{uuid.uuid4().hex[:8]}"
    handled: list[str] = []
    invalid: list[str] = []

    async def on_invalid(record, error) -> None:  # type: ignore[no-untyped-def]
        invalid.append(str(error))

    async def crash_on_third(o: kit.Order) -> None:
        if o.order_id == orders[2]["order_id"]:
            raise RuntimeError("the department's database went away")
        handled.append(o.order_id)

    kw = dict(group_id=group, topic=topic, on_invalid=on_invalid, **kafka_settings.client_kwargs())
    bootstrap = kw.pop("bootstrap_servers")
    try:
        await asyncio.wait_for(consume_orders(bootstrap, "chengguan", crash_on_third, **kw), 60)
    except RuntimeError:
        pass
    assert handled == [orders[0]["order_id"], orders[1]["order_id"]]
    assert len(invalid) == 1

    # A new consumer of the group resumes at the order that was not handled, and at nothing earlier.
    stop, again = asyncio.Event(), []

    async def handle(o: kit.Order) -> None:
        again.append(o.order_id)
        stop.set()

    await asyncio.wait_for(consume_orders(bootstrap, "chengguan", handle, stop=stop, **kw), 60)
    assert again == [orders[2]["order_id"]]


def test_feedback_bodies_are_what_dispatch_and_the_contract_accept() -> None:
    o = kit.decode_order(json.dumps(order("chengguan")).encode())
    evidence = [{"ref": "evidence/a.jpg", "media_type": "image/jpeg", "sha256": "0" * 64, "taken_at": None}]
    reason = {"code": "return.not_our_duty", "detail": "不归本部门"}
    bodies = [
        feedback_for(o, "acknowledge"),
        feedback_for(o, "progress", note="已到场"),
        feedback_for(
            o, "resolve", evidence=evidence, actor={"kind": "staff", "id": "cg/1", "display": "李*"}
        ),
        feedback_for(o, "return", return_reason=reason),
    ]
    validator = schema("feedback.v1.json")
    for fb in bodies:
        validator.validate(fb.body())
        assert str(decode_feedback(fb.encode()).feedback_id) == fb.feedback_id


def broken_department(flaws: set[str]) -> FastAPI:
    """A webhook endpoint with the mistakes departments make: no replay window, no signature check."""
    app = FastAPI()

    @app.post("/webhooks/{department}")
    async def hook(department: str, request: Request) -> JSONResponse:
        body = await request.body()
        h = request.headers
        if "no_signature_check" not in flaws:
            ts = h.get(kit.TIMESTAMP, "")
            now = int(ts) if "no_window" in flaws and ts.isdigit() else None
            try:
                kit.verify_delivery(SECRET.encode(), dict(h), body, now=now)
            except kit.WebhookRefused as e:
                return JSONResponse({"error": e.reason}, 401)
        return JSONResponse({"status": "accepted"})

    return app


async def test_checker_passes_the_simulated_department_and_fails_a_broken_one() -> None:
    received: list[dict] = []
    async with serving(webhook_app({"shichang": SECRET}, received.append)) as base:
        results = await check(f"{base}/webhooks/shichang", SECRET.encode(), "shichang")
        assert [r.name for r in results if not r.passed] == [], [r.line() for r in results]
        assert len(results) == 9
        # The command line, as a department runs it: exit 0.
        cli = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "onegrid_departments.check_webhook",
                f"{base}/webhooks/shichang",
                "--secret",
                SECRET,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert "9/9 cases" in cli.stdout
    # One order handled per run (the library's and the command line's): the duplicates were not.
    assert [o["case"]["title"] for o in received] == ["CONFORMANCE TEST"] * 2

    failing: dict[str, Callable[[], set[str]]] = {
        "no_window": lambda: {"stale_timestamp", "future_timestamp", "not_an_order"},
        "no_signature_check": lambda: {
            "bad_signature",
            "replayed",
            "replayed_new_id",
            "stale_timestamp",
            "future_timestamp",
            "unsigned",
            "not_an_order",
        },
    }
    for flaw, expected in failing.items():
        async with serving(broken_department({flaw})) as base:
            results = await check(f"{base}/webhooks/shichang", SECRET.encode(), "shichang")
            assert {r.name for r in results if not r.passed} == expected()
            cli = await asyncio.to_thread(
                subprocess.run,
                [
                    sys.executable,
                    "-m",
                    "onegrid_departments.check_webhook",
                    f"{base}/webhooks/shichang",
                    "--secret",
                    SECRET,
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert cli.returncode == 1 and "FAIL stale_timestamp" in cli.stdout


def test_checker_orders_are_valid_orders() -> None:
    schema("dispatch-order.v1.json").validate(sample_order("shichang"))
