"""CAP alert geometry in a worker process, with a time limit, never on the event loop.

Repairing and uniting a self-intersecting polygon (``make_valid`` + ``unary_union``) costs far more
than linear time: a few hundred crafted points take a minute. On the event loop that stops every
feed, the Open311 API and the consumer's heartbeats (a rebalance, then the same record again). So the
pipeline asks a `CapGeometry` for each CAP record's shape before processing the batch:

- the shape is computed in one child process (spawned, so it shares no locks or threads with the
  service) while the event loop waits in a thread;
- past `limit_s` the child is killed (a thread could not be stopped) and the record's area becomes
  `Rejected("cap.geometry_timeout")`, so the record is dead-lettered with that reason and its
  original bytes, and the next record gets a fresh child;
- an alert the child cannot parse is left to the pipeline (which rejects it with the parse reason,
  cheaply, before any geometry).

An alert whose areas hold no polygon and at most `INLINE_CIRCLES` circles has a shape of bounded
cost (each circle is 64 vertices: tens of µs in all), computed in place: the round trip to the
child (a thread hop, two pipe messages and the child parsing the alert again) cost about a
millisecond of wall time per alert. The alert is parsed once, here, and handed on with its area.

Not thread-safe beyond one event loop: calls are serialised by a lock.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from dataclasses import replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import msgspec
import shapely

from intake.domain.errors import Rejected
from intake.domain.feeds.cap.alert import CapAlert, parse_alert
from intake.domain.feeds.cap.reports import PreparedArea
from intake.domain.process import Inbound
from onegrid.kafka.policy import TransientError

log = logging.getLogger(__name__)

_READY = "ready"
# Circles (and no polygon) an alert may hold to have its area computed in place.
INLINE_CIRCLES = 4


def _bounded(alert: CapAlert) -> bool:
    areas = [area for info in alert.infos for area in info.areas]
    return (
        not any(area.polygons for area in areas)
        and sum(len(area.circles) for area in areas) <= INLINE_CIRCLES
    )


def _serve(conn: Connection) -> None:  # pragma: no cover - runs in the child process
    from intake.domain.feeds.cap.alert import parse_alert

    conn.send(_READY)
    while True:
        try:
            raw = conn.recv_bytes()
        except EOFError:
            return
        try:
            geometry = parse_alert(raw).geometry()
            conn.send(("ok", None if geometry is None else shapely.to_wkb(geometry)))
        except Rejected as error:
            conn.send(("rejected", error.reason, error.detail))
        except Exception as error:
            conn.send(("error", repr(error)[:500]))


class CapGeometry:
    def __init__(self, limit_s: float = 5.0, start_timeout_s: float = 60.0) -> None:
        self.limit_s = limit_s
        self.start_timeout_s = start_timeout_s
        self.timeouts = 0
        self._child: BaseProcess | None = None
        self._conn: Connection | None = None
        self._lock = asyncio.Lock()

    async def prepare(self, batch: list[Inbound]) -> list[Inbound]:
        """`batch` with every CAP record's area computed (or its refusal), other records unchanged."""
        out = []
        for inbound in batch:
            if inbound.feed == "cap":
                prepared = await self.area(inbound.value)
                inbound = inbound if prepared is None else msgspec.structs.replace(inbound, area=prepared)
            out.append(inbound)
        return out

    async def area(self, raw: bytes) -> PreparedArea | None:
        """The alert's area, `cap.geometry_timeout` past the limit, or None when the alert does
        not parse (the pipeline rejects it with the parser's reason)."""
        try:
            alert = parse_alert(raw)
        except Rejected:
            return None
        if _bounded(alert):
            try:
                return PreparedArea(geometry=alert.geometry(), alert=alert)
            except Exception as error:  # as the child answers it
                return PreparedArea(
                    error=Rejected("cap.geometry_failed", f"the alert's area: {error!r:.500}")
                )
        prepared = await self._in_child(raw)
        return None if prepared is None else replace(prepared, alert=alert)

    async def _in_child(self, raw: bytes) -> PreparedArea | None:
        async with self._lock:
            conn = await self._started()
            conn.send_bytes(raw)
            if not await asyncio.to_thread(conn.poll, self.limit_s):
                self._kill()
                self.timeouts += 1
                log.warning("CAP geometry over %.1fs: the alert is dead-lettered", self.limit_s)
                return PreparedArea(
                    error=Rejected(
                        "cap.geometry_timeout",
                        f"the alert's area was not computed within {self.limit_s:g} s "
                        "(self-intersecting polygons?)",
                    )
                )
            answer: tuple[Any, ...] = conn.recv()
        if answer[0] == "ok":
            return PreparedArea(geometry=None if answer[1] is None else shapely.from_wkb(answer[1]))
        if answer[0] == "rejected" and answer[1] == "cap.too_many_vertices":
            return PreparedArea(error=Rejected(answer[1], answer[2]))
        if answer[0] == "error":
            # never retried on the event loop: what failed there would fail here
            return PreparedArea(error=Rejected("cap.geometry_failed", f"the alert's area: {answer[1]}"))
        return None

    async def _started(self) -> Connection:
        if self._conn is not None and self._child is not None and self._child.is_alive():
            return self._conn
        self._kill()
        ctx = multiprocessing.get_context("spawn")
        parent, child_end = ctx.Pipe()
        child = ctx.Process(target=_serve, args=(child_end,), name="cap-geometry", daemon=True)
        child.start()
        child_end.close()
        self._child, self._conn = child, parent
        # The child's start-up (imports) is not the alert's time.
        if not await asyncio.to_thread(parent.poll, self.start_timeout_s) or parent.recv() != _READY:
            self._kill()
            raise TransientError("the CAP geometry worker did not start")
        return parent

    def _kill(self) -> None:
        if self._child is not None:
            self._child.kill()
            self._child.join(timeout=5)
        if self._conn is not None:
            self._conn.close()
        self._child, self._conn = None, None

    def close(self) -> None:
        """Stop the worker (at shutdown)."""
        self._kill()
