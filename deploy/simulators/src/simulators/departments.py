"""Simulated departments: `python -m simulators departments`.

Two ways in, as real departments integrate:
- Kafka: one consumer (group `sim.departments`) on the pattern `dispatch\\.orders\\..*\\.v1`; the
  answers go to `dispatch.feedback.v1` (key case_id, CloudEvent headers).
- Webhooks: departments listed in ONEGRID_DISPATCH_WEBHOOKS (the same JSON dispatch reads:
  {"<dept>": {"url": "http://127.0.0.1:8010/webhooks/<dept>", "secret": "..."}}) are served by the
  HTTP endpoint of webhook.py on `--webhook-port`; their answers go through dispatch's REST API
  (POST /v1/feedback). Their Kafka orders are ignored, since dispatch publishes every order to the
  topic as well and each order must be answered once.
What each department answers, and when, is `domain.answers.Department`. The grid worker
(grid_worker.py) runs alongside unless disabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import uvicorn
from aiokafka.structs import ConsumerRecord
from pydantic import TypeAdapter

from dispatch.settings import WebhookTarget
from onegrid.envelope import CloudEvent
from onegrid.kafka.producer import make_producer
from onegrid.topics import CASE_LIFECYCLE, DISPATCH_FEEDBACK, orders_topic_pattern
from simulators.domain.answers import Behaviour, Department, Step, feedback
from simulators.endpoints import Endpoints
from simulators.grid_worker import GridWorker
from simulators.patrol import Patrols
from simulators.running import (
    Tally,
    exact,
    follow,
    no_signal_capture,
    report_every,
    stop_after,
    stop_on_signals,
)
from simulators.webhook import webhook_app

log = logging.getLogger(__name__)
ORDERS_PATTERN = orders_topic_pattern().pattern
FEEDBACK_CE_TYPE = "cn.onegrid.dispatch.feedback.v1"
Json = dict[str, Any]
Send = Callable[[Json], Awaitable[str]]


def webhook_secrets(raw: str | None) -> dict[str, str]:
    """Department -> secret from the JSON of ONEGRID_DISPATCH_WEBHOOKS, validated as dispatch does."""
    if not raw:
        return {}
    targets = TypeAdapter(dict[str, WebhookTarget]).validate_json(raw)
    return {dept: t.secret for dept, t in targets.items()}


class Answering:
    """Sends each order's planned feedback when due. Never blocks the caller: one task per order."""

    def __init__(self, department: Department, tally: Tally, *, seed: int | None = None) -> None:
        self.department = department
        self.tally = tally
        self._rng = np.random.default_rng(seed)
        self._tasks: set[asyncio.Task[None]] = set()

    def receive(self, order: Json, send: Send) -> None:
        self.tally["orders"] += 1
        steps = self.department.plan(order, self._rng)
        if not steps:
            self.tally["orders left unanswered"] += 1
            return
        task = asyncio.create_task(self._answer(order, steps, send))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, order: Json, steps: list[Step], send: Send) -> None:
        waited = 0.0
        for step in steps:
            await asyncio.sleep(max(0.0, step.after_s - waited))
            waited = step.after_s
            outcome = await send(feedback(order, step, datetime.now(UTC)))
            self.tally[f"{step.kind} {outcome}"] += 1

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def kafka_sender(producer: Any, topic: str) -> Send:
    async def send(body: Json) -> str:
        ce = CloudEvent(
            type=FEEDBACK_CE_TYPE,
            source=f"/onegrid/simulators/departments/{body['department']}",
            id=body["feedback_id"],
            subject=body["case_id"],
        )
        try:
            await producer.send_and_wait(
                topic,
                json.dumps(body, ensure_ascii=False).encode(),
                key=body["case_id"].encode(),
                headers=ce.headers(),
            )
        except Exception as e:  # the broker is away: count it, the department tries no harder
            log.warning("feedback not sent: %r", e)
            return "failed"
        return "sent"

    return send


def rest_sender(client: httpx.AsyncClient, dispatch_url: str) -> Send:
    async def send(body: Json) -> str:
        try:
            resp = await client.post(f"{dispatch_url}/v1/feedback", json=body)
        except httpx.HTTPError as e:
            log.warning("feedback API unreachable: %s", e)
            return "unreachable"
        return f"via API {resp.status_code}"

    return send


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves SIGINT/SIGTERM to the simulator, which stops it itself."""

    def capture_signals(self) -> contextlib._GeneratorContextManager[None, None, None]:
        return no_signal_capture()


async def run_departments(
    endpoints: Endpoints,
    *,
    behaviour: Behaviour,
    webhooks: dict[str, str],
    webhook_port: int = 8010,
    orders_pattern: str = ORDERS_PATTERN,
    feedback_topic: str = DISPATCH_FEEDBACK,
    lifecycle_topic: str = CASE_LIFECYCLE,
    grid_worker: GridWorker | None = None,
    patrols: Patrols | None = None,
    group: str = "sim.departments",
    duration_s: float | None = None,
    seed: int | None = None,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
    tally: Tally | None = None,
    handle_signals: bool = True,
) -> Tally:
    """Run until `stop` (Ctrl-C, SIGTERM) or `duration_s`; `ready` is set once the order consumer
    has partitions and the webhook endpoint listens."""
    stop = stop or asyncio.Event()
    if handle_signals:
        stop_on_signals(stop)
    tally = tally if tally is not None else Tally("departments")
    answering = Answering(Department(behaviour), tally, seed=seed)
    producer = make_producer(endpoints.kafka, client_id="onegrid-simulators-departments")
    await producer.start()
    http = httpx.AsyncClient(timeout=10.0, headers=endpoints.headers())
    to_kafka = kafka_sender(producer, feedback_topic)
    to_api = rest_sender(http, endpoints.url("dispatch"))

    def on_kafka_order(r: ConsumerRecord[bytes, bytes]) -> None:
        try:
            order = json.loads(r.value or b"")
        except ValueError:
            tally["unreadable orders"] += 1
            return
        if order.get("department") in webhooks:
            return  # answered when its webhook delivery arrives
        answering.receive(order, to_kafka)

    server = QuietServer(
        uvicorn.Config(
            webhook_app(webhooks, lambda order: answering.receive(order, to_api)),
            host="127.0.0.1",
            port=webhook_port,
            log_config=None,
            access_log=False,
        )
    )
    consumed = asyncio.Event()
    jobs = [
        follow(endpoints.kafka, pattern=orders_pattern, group=group, handle=on_kafka_order, stop=stop,
               client_id="onegrid-simulators-departments", ready=consumed),
        server.serve(),
        report_every(tally, stop),
        stop_after(stop, duration_s),
    ]  # fmt: skip
    if grid_worker is not None:
        jobs.append(
            follow(endpoints.kafka, pattern=exact(lifecycle_topic), group=f"{group}.grid-worker",
                   handle=grid_worker.receive, stop=stop, client_id="onegrid-simulators-grid-worker")
        )  # fmt: skip
    if patrols is not None:
        jobs.append(patrols.run(stop))
    tasks = [asyncio.create_task(j) for j in jobs]
    print(
        f"departments: silent {sorted(behaviour.silent) or 'none'}, return rate {behaviour.return_rate:g}, "
        f"webhooks {sorted(webhooks) or 'none'} on :{webhook_port}, grid worker {'on' if grid_worker else 'off'}, "
        f"patrol reports {'on' if patrols else 'off'}",
        flush=True,
    )
    try:
        if ready is not None:
            await _when_ready(consumed, server, stop)
            ready.set()
        await stop.wait()
    finally:
        stop.set()
        server.should_exit = True
        await answering.close()
        if grid_worker is not None:
            await grid_worker.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        await producer.stop()
        await http.aclose()
        print(tally.line(), flush=True)
    return tally


async def _when_ready(consumed: asyncio.Event, server: uvicorn.Server, stop: asyncio.Event) -> None:
    waits = [asyncio.create_task(consumed.wait()), asyncio.create_task(stop.wait())]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for w in waits:
        w.cancel()
    for _ in range(600):  # uvicorn says it listens only through this flag; 30 s at most
        if server.started or stop.is_set():
            return
        await asyncio.sleep(0.05)
