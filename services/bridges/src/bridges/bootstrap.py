"""Composition root of the bridges: the HJ 212 TCP listener, the CAP poller, the HTTP pushes, the
receipts table, health and metrics. No consumer loops: the bridges only write."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from bridges.cap_poller import CapPoller
from bridges.hj212_server import Hj212Bridge
from bridges.push_api import router
from bridges.receipts import Receipts
from bridges.settings import Settings
from bridges.sink import Sink
from bridges.stats import Stats
from onegrid.service import create_app
from onegrid.topics import renamed
from onegrid.wiring import Wiring, wire

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class BridgesService:
    app: FastAPI
    settings: Settings
    bridges: Bridges


def bootstrap(settings: Settings | None = None) -> BridgesService:
    s = settings or Settings()
    w = wire(s, migrations=MIGRATIONS, topics=renamed(s.topics()))
    bridges = Bridges(s, w)
    app = create_app(
        w.runtime,
        title="OneGrid bridges (HJ 212 over TCP, CAP feeds and pushes, public-safety and party-building pushes)",
        routers=[router(s, bridges.sink, Receipts(w.engine), bridges.stats, bridges.status)],
        body_limits={"/v1/push": s.push_max_bytes},
    )
    return BridgesService(app, s, bridges)


class Bridges:
    """The running parts, started after the producer (wire's start-up) and stopped before it."""

    def __init__(self, s: Settings, w: Wiring) -> None:
        self.stats = Stats()
        self.sink = Sink(lambda: w.producer)
        self.hj212 = Hj212Bridge(s, self.sink, self.stats, passwords=s.hj212_passwords())
        self.cap = CapPoller(s, self.sink, self.stats)
        rt = w.runtime
        rt.on_start.append(self.hj212.start)
        rt.background.append(self.cap.run)
        rt.on_stop.insert(0, self.hj212.stop)  # before the producer stops: in-flight packets finish
        rt.checks["hj212_listener"] = self._listening

    async def _listening(self) -> bool:
        return self.hj212.port is not None

    def status(self) -> dict[str, object]:
        return {
            "hj212": {"port": self.hj212.port, "connections": self.hj212.connections},
            **self.stats.to_json(),
        }
