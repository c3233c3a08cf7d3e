"""CPU time of the machine's processes by role between two moments: what one record costs each part of
the system under load (broker, database, intake, dispatch, the bench itself), and how busy the cores
were. Over a window at a fixed rate this gives the machine's ceiling for that path: its cores divided
by the CPU every process together spends per record."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import psutil

Match = Callable[[list[str]], bool]


def _has(*parts: str) -> Match:
    return lambda cmd: any(all(p in arg for p in parts) for arg in cmd)


# First match wins. A process's command line, split as the kernel keeps it.
BROKER = "kafka broker"
ROLES: tuple[tuple[str, Match], ...] = (
    (BROKER, lambda cmd: bool(cmd) and cmd[0].endswith("java")),  # the machine's only JVM
    ("postgresql", lambda cmd: bool(cmd) and ("postgres" in cmd[0] or cmd[0].startswith("postgres:"))),
    ("intake (worker)", _has("bench.worker")),
    ("dispatch", lambda cmd: "dispatch" in cmd and "-m" in cmd),
)
BENCH = "bench (load and measuring)"
OTHER = "other (and processes that ended)"


@dataclass(frozen=True)
class Snapshot:
    by_role: dict[str, float]  # CPU seconds (user + system) of the processes alive now, by role
    busy_s: float  # the machine's busy CPU seconds since boot, every core
    cores: int
    # Of the broker's CPU seconds, its JIT compiler threads': a broker started minutes before still
    # compiles its hot paths (a third of its CPU in a 1,000/s window two minutes after its start),
    # work a broker that has run for days no longer does.
    jit_s: float = 0.0


def role_of(cmd: list[str], pid: int) -> str | None:
    if pid == os.getpid():
        return BENCH
    return next((name for name, match in ROLES if match(cmd)), None)


def snapshot() -> Snapshot:
    by_role: dict[str, float] = {}
    jit_s = 0.0
    for p in psutil.process_iter(["pid", "cmdline", "cpu_times"]):
        try:
            cmd, times = p.info["cmdline"] or [], p.info["cpu_times"]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        role = role_of(cmd, p.info["pid"])
        if role is not None and times is not None:
            by_role[role] = by_role.get(role, 0.0) + times.user + times.system
            if role == BROKER:
                jit_s += compiler_seconds(p)
    t = psutil.cpu_times()
    busy = sum(t) - t.idle - getattr(t, "iowait", 0.0)
    return Snapshot(by_role, busy, psutil.cpu_count() or 1, jit_s)


def compiler_seconds(process: psutil.Process) -> float:
    """CPU seconds of a JVM's JIT compiler threads (HotSpot names them "C1 CompilerThread0",
    "C2 CompilerThread1", ...; the kernel keeps the first 15 characters). 0 where threads cannot be read."""
    total = 0.0
    try:
        threads = process.threads()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0.0
    for t in threads:
        try:
            with open(f"/proc/{process.pid}/task/{t.id}/comm", encoding="utf-8", errors="replace") as f:
                name = f.read()
        except OSError:
            continue
        if "CompilerThre" in name:
            total += t.user_time + t.system_time
    return total


def per_record(before: Snapshot, after: Snapshot, *, records: int, wall_s: float) -> dict[str, object]:
    """CPU ms per record by role between the snapshots, their sum, the cores' busy share, and the
    ceiling that sum puts on the rate (every core busy, nothing else running)."""
    n = max(records, 1)
    ms = {
        role: round(1000 * max(0.0, after.by_role.get(role, 0.0) - before.by_role.get(role, 0.0)) / n, 3)
        for role in [*(name for name, _ in ROLES), BENCH]
    }
    busy = max(0.0, after.busy_s - before.busy_s)
    ms[OTHER] = round(max(0.0, 1000 * busy / n - sum(ms.values())), 3)
    total = 1000 * busy / n
    return {
        "ms_per_record": ms,
        # part of the broker's figure, not added to the total a second time
        "broker_jit_ms_per_record": round(1000 * max(0.0, after.jit_s - before.jit_s) / n, 3),
        "total_ms_per_record": round(total, 3),
        "cores_busy": round(busy / wall_s, 2) if wall_s > 0 else None,
        "cores": after.cores,
        "ceiling_per_s": round(after.cores * 1000 / total) if total > 0 else None,
    }
