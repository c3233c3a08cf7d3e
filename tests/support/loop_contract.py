"""The consumer loop's contract as one suite, run on two backends (as arroyo runs its stream tests on
its local broker and on Kafka): tests/unit/onegrid/test_loop_contract.py on the in-memory broker,
tests/integration/test_loop_contract.py on the session's real broker. A backend gives topics, records
and a loop; the scenarios below never know which one they run on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import pytest

from onegrid.kafka import BatchResult, OutRecord, Record
from onegrid.kafka.loop import ConsumerLoop
from support.waiting import wait_until

Handler = Callable[[Sequence[Record]], Awaitable[BatchResult]]


@dataclass(frozen=True)
class Seen:
    """A record as a reader of the output topic sees it."""

    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


class Backend(Protocol):
    async def topic(self, base: str) -> str:
        """A topic (one partition) whose name is unique to the test."""
        ...

    async def produce(self, topic: str, items: Sequence[tuple[bytes, bytes]]) -> None:
        """(key, value) pairs, in order, to the topic's only partition."""
        ...

    async def loop(self, handler: Handler, *, source: str, group: str, dlq: str, eos: bool) -> ConsumerLoop:
        """A loop reading `source` in `group`, its producer started; at least once, or exactly once
        with `eos`."""
        ...

    async def read(self, topic: str, expect: int) -> list[Seen]:
        """The committed records of `topic`, once at least `expect` are there."""
        ...

    async def committed(self, group: str, topic: str) -> int | None:
        """The group's committed offset of the topic's only partition."""
        ...


def upper(out: str) -> Handler:
    async def handle(records: Sequence[Record]) -> BatchResult:
        return BatchResult(outputs=[OutRecord(out, (r.value or b"").upper(), r.key) for r in records])

    return handle


async def run_until_committed(backend: Backend, loop: ConsumerLoop, group: str, topic: str, n: int) -> None:
    """Run `loop` until the group committed `n` records of `topic`, then stop it (it commits and
    leaves). The loop dying is a failure at once, not a wait to the timeout."""
    task = asyncio.create_task(loop.run())

    async def done() -> bool:
        if task.done():
            task.result()
        return await backend.committed(group, topic) == n

    try:
        await wait_until(done, interval_s=0.05, what=f"{n} records of {topic} committed by {group}")
    finally:
        loop.stop()
        await task


class LoopContract:
    """The scenarios; a subclass named Test... gives the `backend` fixture."""

    @pytest.mark.parametrize("eos", [False, True], ids=["at-least-once", "exactly-once"])
    async def test_outputs_in_input_order_then_the_offsets_committed(
        self, backend: Backend, eos: bool
    ) -> None:
        src, out, dlq = await backend.topic("in"), await backend.topic("out"), await backend.topic("dlq")
        await backend.produce(src, [(b"k", f"m{i}".encode()) for i in range(20)])
        loop = await backend.loop(upper(out), source=src, group=f"g-{src}", dlq=dlq, eos=eos)
        await run_until_committed(backend, loop, f"g-{src}", src, 20)
        assert [s.value for s in await backend.read(out, 20)] == [f"M{i}".encode() for i in range(20)]
        assert await backend.read(dlq, 0) == []

    @pytest.mark.parametrize("eos", [False, True], ids=["at-least-once", "exactly-once"])
    async def test_a_poison_record_is_dead_lettered_with_its_original_bytes_and_the_rest_processed(
        self, backend: Backend, eos: bool
    ) -> None:
        src, out, dlq = await backend.topic("in"), await backend.topic("out"), await backend.topic("dlq")
        values = [b"a", b"b", b"\xff poison", b"c", b"d"]
        await backend.produce(src, [(b"k%d" % i, v) for i, v in enumerate(values)])
        handle = upper(out)

        async def handler(records: Sequence[Record]) -> BatchResult:
            for r in records:
                (r.value or b"").decode()  # poison: not UTF-8
            return await handle(records)

        loop = await backend.loop(handler, source=src, group=f"g-{src}", dlq=dlq, eos=eos)
        await run_until_committed(backend, loop, f"g-{src}", src, len(values))
        assert [s.value for s in await backend.read(out, 4)] == [b"A", b"B", b"C", b"D"]
        [dead] = await backend.read(dlq, 1)
        assert (dead.key, dead.value) == (b"k2", b"\xff poison")
        assert dead.headers["dlq_reason"] == b"unhandled.UnicodeDecodeError"
        assert (dead.headers["dlq_topic"], dead.headers["dlq_offset"]) == (src.encode(), b"2")

    @pytest.mark.parametrize("eos", [False, True], ids=["at-least-once", "exactly-once"])
    async def test_a_loop_started_after_a_stop_reads_on_from_the_commit(
        self, backend: Backend, eos: bool
    ) -> None:
        src, out, dlq = await backend.topic("in"), await backend.topic("out"), await backend.topic("dlq")
        group = f"g-{src}"
        await backend.produce(src, [(b"k", f"m{i}".encode()) for i in range(5)])
        await run_until_committed(
            backend, await backend.loop(upper(out), source=src, group=group, dlq=dlq, eos=eos), group, src, 5
        )
        await backend.produce(src, [(b"k", f"m{i}".encode()) for i in range(5, 10)])
        await run_until_committed(
            backend, await backend.loop(upper(out), source=src, group=group, dlq=dlq, eos=eos), group, src, 10
        )
        assert [s.value for s in await backend.read(out, 10)] == [f"M{i}".encode() for i in range(10)]
