"""Resident memory of each service as `make up` runs it (`python -m <package>`), sampled once every
service is ready (registry loaded, spatial index built, groups joined) and has idled a few seconds.
Each runs in a schema and consumer groups of the run's own, on the catalogue's topics."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bench.services import PACKAGES, ServiceProcess, service_env


async def service_memory(
    run: str, *, bootstrap: str, database_url: str, logs: Path, settle_s: float = 3.0
) -> dict[str, Any]:
    services = [
        ServiceProcess(
            name, service_env(name, run, bootstrap=bootstrap, database_url=database_url), logs / f"{name}.log"
        )
        for name in PACKAGES
    ]
    try:
        # The registry first: the others then start as they would in a running city, with the whole
        # registry on grid.registry.v1 (intake builds its spatial index while it starts).
        registry, others = services[0], services[1:]
        ready = [await registry.start().ready()]
        for s in others:
            s.start()
        ready += await asyncio.gather(*(s.ready() for s in others))
        await asyncio.sleep(settle_s)
        return {
            s.name: {"rss_mb": round(s.rss() / 2**20, 1), "ready_after_s": round(t, 1)}
            for s, t in zip(services, ready, strict=True)
        }
    finally:
        for s in services:
            s.terminate()
        for s in services:
            s.stop()
