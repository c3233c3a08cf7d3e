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
ROLES: tuple[tuple[str, Match], ...] = (
    ("kafka broker", lambda cmd: bool(cmd) and cmd[0].endswith("java")),  # the machine's only JVM
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


def role_of(cmd: list[str], pid: int) -> str | None:
    if pid == os.getpid():
        return BENCH
    return next((name for name, match in ROLES if match(cmd)), None)


def snapshot() -> Snapshot:
    by_role: dict[str, float] = {}
    for p in psutil.process_iter(["pid", "cmdline", "cpu_times"]):
        try:
            cmd, times = p.info["cmdline"] or [], p.info["cpu_times"]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        role = role_of(cmd, p.info["pid"])
        if role is not None and times is not None:
            by_role[role] = by_role.get(role, 0.0) + times.user + times.system
    t = psutil.cpu_times()
    busy = sum(t) - t.idle - getattr(t, "iowait", 0.0)
    return Snapshot(by_role, busy, psutil.cpu_count() or 1)


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
        "total_ms_per_record": round(total, 3),
        "cores_busy": round(busy / wall_s, 2) if wall_s > 0 else None,
        "cores": after.cores,
        "ceiling_per_s": round(after.cores * 1000 / total) if total > 0 else None,
    }
