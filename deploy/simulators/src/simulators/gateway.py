"""The legacy networks' gateways: `python -m simulators networks`.

Each emission of `domain.networks.Networks` goes where the real network sends it: HJ 212, CAP,
public-safety and party records to their `legacy.*` topic (the record's key, its bytes unchanged,
CloudEvent headers as a bridge sets them), residents' Open311 requests as form-encoded
`POST /open311/v2/requests.json` to intake. `rate` records per second in all, paced on the event
loop's clock; a one-line summary every 10 s; stops on Ctrl-C/SIGTERM or after `duration_s`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import httpx

from onegrid.envelope import CloudEvent
from onegrid.kafka.producer import make_producer
from onegrid.topics import LEGACY_EMERGENCY_CAP, LEGACY_ENV_HJ212, LEGACY_PARTY, LEGACY_SAFETY
from simulators.domain.city import reference_city
from simulators.domain.networks import Emission, Networks
from simulators.endpoints import Endpoints
from simulators.running import Tally, report_every, sleep_or_stop, stop_after, stop_on_signals

log = logging.getLogger(__name__)

TOPICS = {
    "hj212": LEGACY_ENV_HJ212,
    "cap": LEGACY_EMERGENCY_CAP,
    "safety": LEGACY_SAFETY,
    "party": LEGACY_PARTY,
}
CONTENT_TYPES = {
    "hj212": "text/plain; charset=us-ascii",
    "cap": "application/cap+xml; charset=utf-8",
    "safety": "application/xml; charset=gbk",
    "party": "application/json; charset=utf-8",
}
FORM = "application/x-www-form-urlencoded"


class Gateway:
    """Sends emissions; counts what was sent, what failed and how intake answered Open311."""

    def __init__(self, endpoints: Endpoints, tally: Tally, *, topics: dict[str, str] | None = None) -> None:
        self.topics = topics or TOPICS
        self.tally = tally
        self._open311 = f"{endpoints.url('intake')}/open311/v2/requests.json"
        self._producer = make_producer(endpoints.kafka, client_id="onegrid-simulators-networks")
        self._http = httpx.AsyncClient(timeout=10.0, headers=endpoints.headers())
        self._inflight: set[asyncio.Future[Any]] = set()

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self.flush()
        await self._producer.stop()
        await self._http.aclose()

    async def publish(self, e: Emission) -> None:
        self.tally[e.feed] += 1
        if e.expect is not None:
            self.tally["broken"] += 1
        if e.kind == "incident" and e.feed == "cap":
            self.tally["incidents"] += 1
        task: asyncio.Future[Any]
        if e.feed == "open311":
            task = asyncio.ensure_future(self._post(e))
        else:
            ce = CloudEvent(
                type=f"cn.onegrid.{self.topics[e.feed]}" if e.feed in TOPICS else "cn.onegrid.legacy.v1",
                source=f"/onegrid/simulators/{e.feed}",
                content_type=CONTENT_TYPES[e.feed],
            )
            task = await self._producer.send(
                self.topics[e.feed], e.value, key=e.key.encode(), headers=ce.headers()
            )
        self._inflight.add(task)
        task.add_done_callback(self._settled)
        if len(self._inflight) > 1000:
            await self.flush()

    async def flush(self) -> None:
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    def _settled(self, fut: asyncio.Future[Any]) -> None:
        self._inflight.discard(fut)
        if not fut.cancelled() and fut.exception() is not None:
            self.tally["errors"] += 1
            log.warning("send failed: %r", fut.exception())

    async def _post(self, e: Emission) -> None:
        try:
            resp = await self._http.post(self._open311, content=e.value, headers={"content-type": FORM})
        except httpx.HTTPError as err:
            self.tally["open311 unreachable"] += 1
            log.warning("open311: %s", err)
            return
        self.tally[f"open311 {resp.status_code}"] += 1


async def run_networks(
    endpoints: Endpoints,
    *,
    rate: float,
    duration_s: float | None,
    seed: int,
    topics: dict[str, str] | None = None,
) -> Tally:
    if rate <= 0:
        raise ValueError("--rate must be positive")
    stop = asyncio.Event()
    stop_on_signals(stop)
    city = await asyncio.to_thread(reference_city)
    tally = Tally("networks")
    sim = Networks(city, seed, datetime.now(UTC))
    gateway = Gateway(endpoints, tally, topics=topics)
    await gateway.start()
    print(
        f"networks: {rate:g} records/s to {endpoints.kafka.bootstrap_servers} and {endpoints.url('intake')}; "
        f"{len(city.stations)} stations, run {sim.tag}, seed {seed}",
        flush=True,
    )
    helpers = [
        asyncio.create_task(report_every(tally, stop)),
        asyncio.create_task(stop_after(stop, duration_s)),
    ]
    loop = asyncio.get_running_loop()
    interval, due = 1.0 / rate, loop.time()
    try:
        while not stop.is_set():
            for e in sim.next(datetime.now(UTC)):
                await gateway.publish(e)
            # After a stall (a slow broker), carry on at the rate rather than bursting to catch up.
            due = max(due + interval, loop.time() - 1.0)
            if await sleep_or_stop(stop, due - loop.time()):
                break
    finally:
        stop.set()
        await gateway.stop()
        for h in helpers:
            h.cancel()
        print(tally.line(), flush=True)
    return tally
