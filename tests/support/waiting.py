"""One way for a test to wait for something another task or process does: poll a check until it
gives a truthy value. The timeout only bounds a hung run (its failure names what was awaited); no
test asserts on how long the wait took."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_until(
    check: Callable[[], T | Awaitable[T]],
    *,
    timeout_s: float = 60.0,
    interval_s: float = 0.2,
    what: str = "the condition",
) -> T:
    """The first truthy result of `check()` (a plain or an async function), polled every `interval_s`;
    AssertionError naming `what` when none came within `timeout_s`. An error raised by the check
    propagates at once (a check may assert that a watched process is still alive)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if loop.time() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval_s)
