"""Evaluation's per-batch apply time with a month already full: `ReadModels.apply` on the real PostgreSQL.

    python -m bench.evaluation_apply [--cases 50000] [--batch 500] [--rounds 5]

Fills one month (2026-03, city time) with `--cases` cases (registered, dispatched to one of 20
departments, acknowledged, resolved, verified and closed; some returned and arbitrated; 400 grids,
40 streets, 5 networks, 30 categories) through `ReadModels.apply` in batches of 2,000 cases, then
times `--rounds` batches of `--batch` events, each a reopen of a different case of that month (every
case of the batch changes; its rows and the month's rows are recomputed). Prints the median and every
round in milliseconds, and the median CPU time of the process itself (what the service's event loop
spends; the rest is PostgreSQL's). Starts its own PostgreSQL (devstack's) unless DATABASE_URL names one; uses a
fresh schema, dropped at the end. Only the public API is used, so the same script times any version
of the service (put its src first on PYTHONPATH).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from devstack.paths import free_port
from devstack.postgres import LocalPostgres
from evaluation.domain.case_facts import Policy
from evaluation.rebuild import MIGRATIONS
from evaluation.store import ReadModels, Received
from onegrid.db import make_engine, migrate
from onegrid.topics import CASE_LIFECYCLE
from onegrid_contracts.lifecycle import decode_lifecycle

MONTH = datetime(2026, 2, 28, 16, tzinfo=UTC)  # 2026-03-01 00:00 city time
DEPARTMENTS = [f"dept{i:02d}" for i in range(20)]
STREETS = [f"3210030{i:02d}" for i in range(40)]
NETWORKS = ["open311", "party", "env", "safety", "emergency"]
CATEGORIES = [f"city.c{i:02d}" for i in range(30)]


def _z(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


class Case:
    def __init__(self, rnd: random.Random) -> None:
        self.id = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
        self.street = rnd.choice(STREETS)
        self.grid = f"{self.street}{rnd.randrange(10):03d}{rnd.randrange(1000):03d}"
        self.network, self.category = rnd.choice(NETWORKS), rnd.choice(CATEGORIES)
        self.department: str | None = None
        self.at = MONTH + timedelta(seconds=rnd.randrange(30 * 86400))
        self.state: str | None = None
        self.seq = 0
        self.rnd = rnd

    def event(self, action: str, to: str, minutes: int) -> dict[str, Any]:
        self.at += timedelta(minutes=minutes)
        self.seq += 1
        body = {
            "event_id": str(uuid.UUID(int=self.rnd.getrandbits(128), version=4)),
            "case_id": self.id,
            "seq": self.seq,
            "from_state": self.state,
            "to_state": to,
            "action": action,
            "actor": {"kind": "system", "id": "dispatch", "display": "系统"},
            "reason": None,
            "at": _z(self.at),
            "deadlines": {"acknowledge_by": None, "resolve_by": _z(self.at + timedelta(hours=24))},
            "dimensions": {
                "network": self.network,
                "category_code": self.category,
                "severity_level": 3,
                "district": self.street[:6],
                "street": self.street,
                "community": self.grid[:12],
                "grid": self.grid,
                "department": self.department,
                "hops": 0,
                "tier": "grid",
            },
            "versions": {"rule_version": "7", "taxonomy_version": "2026.1", "grid_version": "g#1"},
        }
        self.state = to
        return body

    def life(self) -> list[dict[str, Any]]:
        r = self.rnd
        out = [self.event("register", "registered", 0)]
        self.department = r.choice(DEPARTMENTS)
        out.append(self.event("dispatch", "dispatched", r.randrange(1, 30)))
        if r.random() < 0.1:
            out.append(self.event("return", "returned", r.randrange(5, 60)))
            self.department = r.choice(DEPARTMENTS)
            out.append(self.event("arbitrate", "dispatched", r.randrange(5, 60)))
        out.append(self.event("acknowledge", "acknowledged", r.randrange(1, 120)))
        if r.random() < 0.9:
            out.append(self.event("resolve", "resolved", r.randrange(60, 3000)))
            out.append(self.event("verify", "verified", r.randrange(10, 2000)))
            out.append(self.event("close", "closed", 0))
        return out


def received(bodies: list[dict[str, Any]], offset: int) -> list[Received]:
    out = []
    for i, b in enumerate(bodies):
        raw = json.dumps(b).encode()
        out.append(Received(decode_lifecycle(raw), raw, CASE_LIFECYCLE, 0, offset + i))
    return out


async def run(database_url: str, n_cases: int, batch: int, rounds: int) -> None:
    url = "postgresql+asyncpg://" + database_url.split("://", 1)[1]
    schema = f"evaluation_bench_{uuid.uuid4().hex[:8]}"
    await migrate(url, schema, MIGRATIONS)
    engine = make_engine(url, schema, pool_size=1)
    models = ReadModels(engine, Policy())
    rnd = random.Random(7)
    try:
        cases = [Case(rnd) for _ in range(n_cases)]
        offset, started = 0, time.monotonic()
        for lo in range(0, n_cases, 2000):
            bodies = [b for c in cases[lo : lo + 2000] for b in c.life()]
            await models.apply(received(bodies, offset))
            offset += len(bodies)
        print(f"filled {n_cases} cases ({offset} events) in {time.monotonic() - started:.1f} s")
        picked = rnd.sample(cases, batch * rounds)
        times, cpu = [], []
        for r in range(rounds):
            bodies = [c.event("reopen", "reopened", 60 * 24) for c in picked[r * batch : (r + 1) * batch]]
            events = received(bodies, offset)
            offset += len(bodies)
            t0, c0 = time.perf_counter(), time.process_time()
            applied = await models.apply(events)
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            assert applied.cases == batch, applied
        print(
            f"apply of {batch} changed cases, month of {n_cases}: median {statistics.median(times):.0f} ms "
            f"(rounds: {', '.join(f'{t:.0f}' for t in times)}); the service's own CPU (its event loop) "
            f"median {statistics.median(cpu):.0f} ms"
        )
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.evaluation_apply", description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=50_000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    if os.environ.get("DATABASE_URL"):
        asyncio.run(run(os.environ["DATABASE_URL"], a.cases, a.batch, a.rounds))
        return
    home = Path(tempfile.mkdtemp(prefix="onegrid-pg-"))
    pg = LocalPostgres(home / "data", port=free_port(), database="onegrid_bench")
    pg.start()
    try:
        asyncio.run(run(pg.url, a.cases, a.batch, a.rounds))
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
