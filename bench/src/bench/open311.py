"""The Open311 service as `make up` runs it (`python -m open311`), on topics and a schema of the run's
own: residents' requests through its HTTP API (each POST answered only after the broker acknowledged
the record and the row committed), reads of them, and its status loop following case.lifecycle.v1
(three transitions per request's case, until every request shows `closed`).

Figures: POSTs and GETs per second from `concurrency` clients with their latency percentiles, and
lifecycle events applied per second (from the first event produced to the last request closed, read
in the database every 0.1 s: the granularity is in the figure)."""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import text

from bench.kafka_io import Namespace, fast_producer
from bench.services import ServiceProcess, service_env
from intake.domain.identity import case_id_for
from onegrid.auth import mint
from onegrid.db import make_engine
from onegrid.kafka.admin import ensure_topics
from onegrid.topics import TopicSpec

FORM = {"content-type": "application/x-www-form-urlencoded"}
_UNLIMITED = json.dumps({"rate_per_s": 1_000_000, "burst": 1_000_000})
_STATES = ("registered", "dispatched", "closed")


def _percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return {"p50": round(cuts[49], 1), "p99": round(cuts[98], 1), "max": round(ms[-1], 1)}


async def _timed(n: int, concurrency: int, call: Any) -> tuple[float, list[float], list[Any]]:
    """`call(i)` for i < n from `concurrency` workers: elapsed seconds, latencies, results in order."""
    latencies: list[float] = []
    results: list[Any] = [None] * n
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            t = time.perf_counter()
            results[i] = await call(i)
            latencies.append(time.perf_counter() - t)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, results


def _lifecycle(case_id: uuid.UUID, seq: int, state: str) -> bytes:
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "case_id": str(case_id),
            "seq": seq,
            "from_state": None,
            "to_state": state,
            "action": state,
            "actor": {"kind": "system", "id": "dispatch", "display": "bench"},
            "reason": None,
            "at": "2026-03-01T02:00:00Z",
            "deadlines": {"acknowledge_by": None, "resolve_by": None},
            "dimensions": {"network": "open311", "department": "bench", "hops": 1},
        }
    ).encode()


async def bench_open311(
    ns: Namespace, *, bootstrap: str, database_url: str, logs: Path, requests: int, concurrency: int = 8
) -> dict[str, Any]:
    topics = {k: ns.name(f"open311.{k}") for k in ("requests", "cases", "lifecycle", "dlq")}
    await ensure_topics(
        ns.kafka,
        [
            TopicSpec(topics["requests"], partitions=3),
            TopicSpec(topics["cases"], partitions=6),
            TopicSpec(topics["lifecycle"], partitions=6),
            TopicSpec(topics["dlq"], partitions=1),
        ],
    )
    secret = secrets.token_urlsafe(48)
    env = service_env("open311", ns.run, bootstrap=bootstrap, database_url=database_url) | {
        "ONEGRID_AUTH_HS256_SECRET": secret,
        "ONEGRID_OPEN311_TOPIC": topics["requests"],
        "ONEGRID_OPEN311_CASES_TOPIC": topics["cases"],
        "ONEGRID_OPEN311_LIFECYCLE_TOPIC": topics["lifecycle"],
        "ONEGRID_OPEN311_DLQ_TOPIC": topics["dlq"],
        # One client address sends everything here: the per-address limits would measure themselves.
        "ONEGRID_OPEN311_SUBMIT_RATE": _UNLIMITED,
        "ONEGRID_OPEN311_READ_RATE": _UNLIMITED,
    }
    service = ServiceProcess("open311", env, logs / "open311.log").start()
    token = mint(secret.encode(), role="admin", subject="admin:bench", ttl_s=3600)
    engine = make_engine(
        "postgresql+asyncpg://" + database_url.split("://", 1)[1],
        env["ONEGRID_OPEN311_DB_SCHEMA"],
        pool_size=1,
    )
    try:
        ready_s = await service.ready()
        base = f"http://127.0.0.1:{service.port}/open311/v2"
        limits = httpx.Limits(max_connections=concurrency)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:

            async def post(i: int) -> str:
                form = {"service_code": "001", "lat": "32.39", "long": "119.41", "description": f"bench {i}"}
                r = await client.post("/requests.json", content=urlencode(form).encode(), headers=FORM)
                r.raise_for_status()
                return str(r.json()[0]["service_request_id"])

            post_s, post_lat, ids = await _timed(requests, concurrency, post)

            async def get(i: int) -> None:
                r = await client.get(f"/requests/{ids[i]}.json")
                r.raise_for_status()

            get_s, get_lat, _ = await _timed(requests, concurrency, get)

        events = [
            (case_id_for("open311", rid), seq, state)
            for seq, state in enumerate(_STATES, start=1)
            for rid in ids
        ]
        producer = fast_producer(ns.kafka)
        await producer.start()
        started = time.perf_counter()
        try:
            for case_id, seq, state in events:
                await producer.send(
                    topics["lifecycle"], _lifecycle(case_id, seq, state), key=str(case_id).encode()
                )
            await producer.flush()
        finally:
            await producer.stop()
        closed = 0
        deadline = started + 300
        while closed < requests and time.perf_counter() < deadline:
            async with engine.connect() as conn:
                closed = (
                    await conn.execute(text("SELECT count(*) FROM open311_request WHERE status = 'closed'"))
                ).scalar_one()
            if closed < requests:
                await asyncio.sleep(0.1)
        follow_s = time.perf_counter() - started
        if closed < requests:
            raise TimeoutError(f"only {closed} of {requests} requests closed after {follow_s:.0f} s")
        return {
            "requests": requests,
            "concurrency": concurrency,
            "ready_after_s": round(ready_s, 1),
            "post": {"per_s": round(requests / post_s, 1), **_percentiles(post_lat)},
            "get": {"per_s": round(requests / get_s, 1), **_percentiles(get_lat)},
            "status": {
                "events": len(events),
                "per_s": round(len(events) / follow_s, 1),
                "seconds": round(follow_s, 2),
            },
        }
    finally:
        await engine.dispose()
        service.stop()
