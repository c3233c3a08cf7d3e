"""Throughput of a consumer group made of worker processes: records per second from the first batch
any instance starts to the last batch any instance delivers, and CPU per record over all instances."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from bench.processes import WorkerProcess


@dataclass(frozen=True)
class Throughput:
    records: int
    seconds: float
    per_s: float
    cpu_us_per_record: float
    instances: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


async def run_group(
    workers: list[WorkerProcess],
    *,
    mode: str,
    topics: list[str],
    group: str,
    n: int,
    out: str | None = None,
    before: Callable[[], Awaitable[None]] | None = None,
    timeout_s: float = 300.0,
) -> Throughput:
    """Run `mode` in every worker as one group over `topics` until `n` records are done in total;
    `before` runs once the runs are started (e.g. to produce the records only then)."""
    single = len(workers) == 1
    for i, w in enumerate(workers):
        w.progress = w.assigned = 0
        await w.send(
            {
                "op": "run",
                "mode": mode,
                "topics": topics,
                "group": group,
                "n": n if single else None,
                "out": out,
                "instance": i,
                "fresh": mode == "intake",
            }
        )
        if mode == "intake":
            await w.answer("fresh")
    if before is not None:
        await before()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    if not single:
        while sum(w.progress for w in workers) < n:
            if loop.time() > deadline:
                raise TimeoutError(f"{mode} on {topics}: {sum(w.progress for w in workers)} of {n} records")
            await asyncio.sleep(0.1)
        for w in workers:
            await w.send({"op": "stop"})
    results = [(await w.answer("result", timeout_s))["result"] for w in workers]
    done = sum(r["count"] for r in results)
    if done < n:
        raise RuntimeError(f"{mode} on {topics}: only {done} of {n} records done")
    started = [r["t_first"] for r in results if r["t_first"] is not None]
    ended = [r["t_last"] for r in results if r["t_last"] is not None]
    seconds = max(ended) - min(started)
    cpu = sum(r["cpu_s"] for r in results)
    return Throughput(done, seconds, done / seconds, cpu / done * 1e6, len(workers))


async def wait_assigned(
    workers: list[WorkerProcess], partitions: int, *, stable_s: float = 1.5, timeout_s: float = 60.0
) -> None:
    """Until the group is formed and stable: its instances together own every partition, as many
    instances as there are partitions own some, and that has held for `stable_s` (a late joiner
    would have caused a rebalance by then)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    held_since: float | None = None
    while True:
        owning = sum(1 for w in workers if w.assigned)
        formed = sum(w.assigned for w in workers) == partitions and owning == min(partitions, len(workers))
        now = loop.time()
        held_since = (held_since or now) if formed else None
        if held_since is not None and now - held_since >= stable_s:
            return
        if now > deadline:
            raise TimeoutError(f"group not formed: {[w.assigned for w in workers]} of {partitions}")
        await asyncio.sleep(0.1)
