"""One way to run a service's periodic work (outbox relay, deadlines, webhooks, head signer, audit
checks, gauges): a `tick` every `interval_s` until `stop()`.

Every job stops and backs off the same way:
- `stop()` ends the job at once, also in the middle of a wait (never after a whole interval);
- a tick that raises an error `retry` accepts (by default a transient one: the database restarting,
  a broker away) is logged and tried again after a capped, jittered backoff, reset by the next good
  tick; any other error leaves `run` for `onegrid.service.supervise_job` to judge;
- `again(result)` true (a full batch) runs the next tick at once, without waiting;
- `wake()` cuts the current wait short (work was just committed in this process).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from onegrid.kafka.policy import Backoff, is_transient

log = logging.getLogger(__name__)

T = TypeVar("T")


def _never(_result: object) -> bool:
    return False


def any_error(_exc: Exception) -> bool:
    """For jobs whose failure must never stop the service (gauges, housekeeping)."""
    return True


class Periodic:
    def __init__(
        self,
        name: str,
        interval_s: float,
        *,
        retry: Callable[[Exception], bool] = is_transient,
        initial_backoff_s: float = 0.1,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self._retry = retry
        self._backoff = Backoff(initial_s=initial_backoff_s, max_s=max_backoff_s)
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self, tick: Callable[[], Awaitable[T]], *, again: Callable[[T], bool] = _never) -> None:
        """Tick until `stop()`; see the module's docstring for failures."""
        while not self._stopping.is_set():
            # Cleared before the tick: a wake during it (a commit it did not see) skips the next wait.
            self._wake.clear()
            try:
                result = await tick()
            except Exception as exc:
                if not self._retry(exc):
                    raise
                delay = self._backoff.next_delay()
                log.warning("%s failed, again in %.2f s: %r", self.name, delay, exc, exc_info=True)
                await self._pause(delay)
                continue
            self._backoff.reset()
            if not again(result):
                await self._pause(self.interval_s)

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass
