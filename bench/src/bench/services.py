"""The services as processes (`python -m <package>`), configured by environment like `make up`, on
the bench's broker and database: each in its own schema and consumer groups (named for the run), so
the bench never mixes with a running system or a test."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from devstack.paths import free_port

PACKAGES = {
    "grid-registry": "grid_registry",
    "intake": "intake",
    "dispatch": "dispatch",
    "audit": "audit",
    "open311": "open311",
}


def signing_key() -> str:
    """A throwaway Ed25519 seed for the audit service (base64 of the raw 32 bytes)."""
    return base64.b64encode(os.urandom(32)).decode()


@dataclass
class ServiceProcess:
    name: str
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def prefix(self) -> str:
        return "ONEGRID_" + PACKAGES[self.name].upper() + "_"

    def start(self) -> ServiceProcess:
        env = {**os.environ, **self.env, f"{self.prefix}HTTP_PORT": str(self.port)}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", PACKAGES[self.name]], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        return self

    async def ready(self, timeout_s: float = 120.0) -> float:
        """Seconds until /readyz answers 200 (raises with the log's tail if it never does)."""
        assert self.proc is not None
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            if await asyncio.to_thread(self._ready_once):
                return time.monotonic() - started
            await asyncio.sleep(0.5)
        raise TimeoutError(f"{self.name} not ready after {timeout_s}s:\n{self.tail()}")

    def _ready_once(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def loop_lag_buckets(self) -> dict[float, float]:
        """The service's event-loop lag histogram as exported on /metrics: {upper bound s: count}."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            text = r.read().decode()
        out: dict[float, float] = {}
        for line in text.splitlines():
            m = re.match(r'onegrid_event_loop_lag_seconds_bucket\{.*le="([^"]+)".*\}\s+(\S+)', line)
            if m:
                out[float(m.group(1))] = out.get(float(m.group(1)), 0.0) + float(m.group(2))
        return out

    def rss(self) -> int:
        assert self.proc is not None
        return int(psutil.Process(self.proc.pid).memory_info().rss)

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def terminate(self) -> None:
        """SIGTERM: the service finishes its batches, commits and leaves its groups."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.terminate()
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def service_env(name: str, run: str, *, bootstrap: str, database_url: str) -> dict[str, str]:
    """Broker, database, a schema and consumer groups of the run's own; quiet logs."""
    p = "ONEGRID_" + PACKAGES[name].upper() + "_"
    env = {
        "ONEGRID_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DATABASE_URL": database_url,
        f"{p}DB_SCHEMA": f"bench_{PACKAGES[name]}_{run}",
        f"{p}SERVICE_NAME": f"bench-{name}-{run}",
        "ONEGRID_OTEL_LOG_LEVEL": "WARNING",
        # a local measurement, like make up: services default to production (identity provider's keys)
        "ONEGRID_ENVIRONMENT": "development",
    }
    if name == "audit":
        env["ONEGRID_AUDIT_SIGNING_KEY"] = signing_key()
    return env


def bucket_percentiles(
    before: dict[float, float], after: dict[float, float]
) -> dict[str, float | int | None]:
    """p50, p99 and p99.9 (ms) of what a cumulative histogram gained between two scrapes: the upper
    bound of the bucket each falls in (so an upper estimate, to the bucket's resolution)."""
    bounds = sorted(after)
    gained = [after[b] - before.get(b, 0.0) for b in bounds]
    total = gained[-1] if gained else 0.0
    out: dict[str, float | int | None] = {"n": int(total)}
    for name, q in (("p50_ms", 0.5), ("p99_ms", 0.99), ("p99_9_ms", 0.999)):
        b = next((b for b, n in zip(bounds, gained, strict=True) if total and n >= q * total), None)
        if b is None or b != float("inf"):
            out[name] = None if b is None else round(b * 1000, 1)
        else:  # beyond the last bound
            out[name] = f"> {bounds[-2] * 1000:.0f}" if len(bounds) > 1 else None  # type: ignore[assignment]
    return out
