"""The legacy networks' gateways: `python -m simulators networks`.

Each emission of `domain.networks.Networks` goes the way the real network sends it, through the
bridges (services/bridges), never to Kafka directly:
- HJ 212: every station's data logger holds a TCP connection to the HJ 212 bridge, asks for an answer
  and resends until answered (bridged.StationLinks);
- CAP: alerts are published on the alert hub served here (an Atom index, bridged.AlertHub), which
  the bridge's CAP poller follows (ONEGRID_BRIDGES_CAP_FEEDS, set by `make run`);
- public safety (GBK XML) and party building (JSON): POSTed to the bridges' push endpoints;
- Open311: residents' requests as form-encoded `POST /open311/v2/requests.json` to the Open311 service.
`rate` records per second in all, paced on the event loop's clock; a one-line summary every 10 s;
stops on Ctrl-C/SIGTERM or after `duration_s`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn

from onegrid.topics import LEGACY_EMERGENCY_CAP, LEGACY_ENV_HJ212, LEGACY_PARTY, LEGACY_SAFETY
from simulators.bridged import AlertHub, Pusher, StationLinks
from simulators.departments import QuietServer
from simulators.domain.city import reference_city
from simulators.domain.networks import Emission, Networks
from simulators.endpoints import Endpoints
from simulators.running import Tally, report_every, sleep_or_stop, stop_after, stop_on_signals

log = logging.getLogger(__name__)

# Where each feed's records land (written by the bridges).
TOPICS = {
    "hj212": LEGACY_ENV_HJ212,
    "cap": LEGACY_EMERGENCY_CAP,
    "safety": LEGACY_SAFETY,
    "party": LEGACY_PARTY,
}
FORM = "application/x-www-form-urlencoded"
ALERT_HUB_PATH = "/cap/index.atom"


class Gateway:
    """Sends emissions through the bridges; counts what was sent, failed, and how it was answered."""

    def __init__(self, endpoints: Endpoints, tally: Tally, hub: AlertHub) -> None:
        self.tally = tally
        self.hub = hub
        self._open311 = f"{endpoints.url('open311')}/open311/v2/requests.json"
        self._http = httpx.AsyncClient(timeout=10.0, headers=endpoints.headers())
        self.stations = StationLinks(endpoints.hj212_address, tally)
        self.pusher = Pusher(endpoints.url("bridges"), tally, fallback_headers=endpoints.headers())
        self._inflight: set[asyncio.Future[Any]] = set()

    async def stop(self) -> None:
        await self.flush()
        await self.stations.flush()
        await self.stations.close()
        await self.pusher.close()
        await self._http.aclose()

    async def publish(self, e: Emission) -> None:
        self.tally[e.feed] += 1
        if e.expect is not None:
            self.tally["broken"] += 1
        if e.kind == "incident" and e.feed == "cap":
            self.tally["incidents"] += 1
        if e.feed == "hj212":
            self.stations.send(e.key, e.value)
            return
        if e.feed == "cap":
            self.hub.add(e.value)
            return
        task: asyncio.Future[Any]
        if e.feed == "open311":
            task = asyncio.ensure_future(self._post(e))
        else:
            task = asyncio.ensure_future(self.pusher.push(e.feed, e.value))
        self._inflight.add(task)
        task.add_done_callback(self._settled)
        if len(self._inflight) > 200:
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
    alert_hub_port: int = 8011,
    handle_signals: bool = True,
) -> Tally:
    if rate <= 0:
        raise ValueError("--rate must be positive")
    stop = asyncio.Event()
    if handle_signals:
        stop_on_signals(stop)
    city = await asyncio.to_thread(reference_city)
    tally = Tally("networks")
    sim = Networks(city, seed, datetime.now(UTC))
    hub = AlertHub()
    hub_server = QuietServer(
        uvicorn.Config(hub.app, host="127.0.0.1", port=alert_hub_port, log_config=None, access_log=False)
    )
    hub_task = asyncio.create_task(hub_server.serve())
    gateway = Gateway(endpoints, tally, hub)
    print(
        f"networks: {rate:g} records/s through the bridges (HJ 212 over TCP to {endpoints.hj212_address}, "
        f"pushes to {endpoints.url('bridges')}, alert hub http://127.0.0.1:{alert_hub_port}{ALERT_HUB_PATH}) "
        f"and Open311 to {endpoints.url('open311')}; {len(city.stations)} stations, run {sim.tag}, seed {seed}",
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
            # After a stall (a slow bridge), carry on at the rate rather than bursting to catch up.
            due = max(due + interval, loop.time() - 1.0)
            if await sleep_or_stop(stop, due - loop.time()):
                break
    finally:
        stop.set()
        await gateway.stop()
        hub_server.should_exit = True
        await hub_task
        for h in helpers:
            h.cancel()
        print(tally.line(), flush=True)
    return tally
