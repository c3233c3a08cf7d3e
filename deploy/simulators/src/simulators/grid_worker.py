"""The simulated grid worker and command-centre operator, acting through dispatch's API.

Follows `case.lifecycle.v1`; per event `domain.answers.grid_action` says what to do, and after a
short delay the worker does it: `POST /v1/cases/{id}/self_handle` for a small case left to the grid,
`verify` or `rework` for a resolved one, `arbitrate` (to the department the return suggested) for a
returned one. Each call carries `Idempotency-Key: sim-grid:<event id>`, so a replayed event changes
nothing; events older than `max_age_s` are ignored (a restart does not re-walk history); a 409 (the
case moved on meanwhile) is counted, not retried. Demo cases are left to the demo.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

import httpx
import numpy as np
from aiokafka.structs import ConsumerRecord

from simulators.domain.answers import GridAction, grid_action, is_demo
from simulators.running import Tally

log = logging.getLogger(__name__)


class GridWorker:
    def __init__(
        self,
        dispatch_url: str,
        tally: Tally,
        *,
        rework_rate: float = 0.1,
        delay_s: tuple[float, float] = (5.0, 30.0),
        max_age_s: float = 3600.0,
        seed: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._url = dispatch_url.rstrip("/")
        self._tally = tally
        self._rework = rework_rate
        self._delay = delay_s
        self._max_age = max_age_s
        self._rng = np.random.default_rng(seed)
        self._http = httpx.AsyncClient(timeout=10.0, headers=headers or {})
        self._tasks: set[asyncio.Task[None]] = set()

    def receive(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            event = json.loads(record.value or b"")
            at = datetime.fromisoformat(event["at"].replace("Z", "+00:00"))
        except (ValueError, KeyError, TypeError):
            self._tally["grid unreadable events"] += 1
            return
        if (datetime.now(UTC) - at).total_seconds() > self._max_age:
            return
        action = grid_action(event, self._rng, rework_rate=self._rework)
        if action is None:
            return
        task = asyncio.create_task(self._act(action, float(self._rng.uniform(*self._delay))))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.aclose()

    async def _act(self, action: GridAction, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        try:
            resp = await self._http.get(f"{self._url}/v1/cases/{action.case_id}")
            if resp.status_code != 200:
                self._tally[f"grid {action.action} case {resp.status_code}"] += 1
                return
            case = resp.json()["case"]
            if is_demo(case["facts"]["title"]):
                return
            body = dict(action.body)
            if action.action == "arbitrate":
                suggested = (case.get("last_return") or {}).get("suggested_department")
                if not suggested:
                    self._tally["grid arbitrate without suggestion"] += 1
                    return
                body["department"] = suggested
            resp = await self._http.post(
                f"{self._url}/v1/cases/{action.case_id}/{action.action}",
                json=body,
                headers={"Idempotency-Key": action.idempotency_key},
            )
        except httpx.HTTPError as e:
            self._tally["grid unreachable"] += 1
            log.warning("dispatch API: %s", e)
            return
        self._tally[f"grid {action.action} {resp.status_code}"] += 1
