"""What every simulator process shares: stopping on SIGINT/SIGTERM or after a duration, a one-line
summary every few seconds, and following Kafka topics by pattern."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator

from aiokafka.structs import ConsumerRecord

from onegrid.kafka.loop import make_consumer
from onegrid.settings import KafkaSettings


def stop_on_signals(stop: asyncio.Event) -> None:
    """Ctrl-C and SIGTERM set `stop`; the simulator finishes what it is sending and exits."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def stop_after(stop: asyncio.Event, duration_s: float | None) -> None:
    if duration_s is None:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=duration_s)
    stop.set()


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds`; True when `stop` was set meanwhile."""
    if seconds <= 0:
        return stop.is_set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


class Tally(Counter[str]):
    """Counts since the start; `line()` is the summary printed every interval."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.started = time.monotonic()

    def line(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.items()))
        return f"{self.name} after {time.monotonic() - self.started:.0f} s: {parts or 'nothing yet'}"


async def report_every(tally: Tally, stop: asyncio.Event, seconds: float = 10.0) -> None:
    while not await sleep_or_stop(stop, seconds):
        print(tally.line(), flush=True)


def exact(topic: str) -> str:
    """A subscription pattern matching exactly `topic`."""
    return f"^{re.escape(topic)}$"


async def follow(
    kafka: KafkaSettings,
    *,
    pattern: str,
    group: str,
    handle: Callable[[ConsumerRecord[bytes, bytes]], None],
    stop: asyncio.Event,
    client_id: str,
    ready: asyncio.Event | None = None,
) -> None:
    """Read every record of the topics matching `pattern` (committed data only) and hand each to
    `handle`, until `stop`. Offsets are auto-committed: a restarted simulator resumes where it
    left off; new topics (a department's first orders) are found within a few seconds."""
    consumer = make_consumer(
        kafka, group_id=group, client_id=client_id, enable_auto_commit=True, metadata_max_age_ms=3000
    )
    consumer.subscribe(pattern=pattern)
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500)
            if ready is not None and consumer.assignment():
                ready.set()
            for records in batch.values():
                for r in records:
                    handle(r)
    finally:
        await consumer.stop()


@contextlib.contextmanager
def no_signal_capture() -> Iterator[None]:
    """For uvicorn.Server.capture_signals: this process handles its signals itself."""
    yield
