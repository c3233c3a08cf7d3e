"""The closed loop's standing numbers as Prometheus gauges: cases by state and webhook deliveries
stuck per department (the dashboards and alerts of deploy/k8s/base/observability name them).

They are counted in the database every `interval_s` by one background job per instance; every
instance reports the same totals, so dashboards take `max` over instances, never `sum`.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.metrics import CallbackOptions, Observation
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch.webhooks import stuck
from onegrid import telemetry
from onegrid.periodic import Periodic, any_error


class LoopGauges:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        stuck_after: int,
        departments: Iterable[str] = (),
        interval_s: float = 15.0,
    ) -> None:
        self._engine = engine
        self._stuck_after = stuck_after
        self._interval_s = interval_s
        self.cases: dict[str, int] = {}
        # Every department served by webhook reports 0 when nothing is stuck: an alert resolves,
        # and a dashboard shows the department rather than no data.
        self.stuck: dict[str, int] = dict.fromkeys(sorted(departments), 0)
        m = telemetry.meter("dispatch")
        m.create_observable_gauge(
            "dispatch_cases", callbacks=[self._observe_cases], description="cases by state (database count)"
        )
        m.create_observable_gauge(
            "dispatch_webhook_stuck_deliveries",
            callbacks=[self._observe_stuck],
            description="webhook deliveries pending after the stuck threshold of attempts, per department",
        )

    async def refresh(self) -> None:
        async with self._engine.connect() as conn:
            rows = await conn.execute(text("SELECT state, count(*) FROM cases GROUP BY state"))
            self.cases = {str(state): int(n) for state, n in rows}
        pending = await stuck(self._engine, min_attempts=self._stuck_after)
        # A department that recovered reports 0 rather than vanishing, so an alert resolves.
        self.stuck = {
            **dict.fromkeys(self.stuck, 0),
            **{str(r["department"]): int(r["pending"]) for r in pending},
        }

    async def run(self) -> None:
        """Count until cancelled; a failed count never stops the service (the gauges keep the last)."""
        await Periodic("dispatch gauges", self._interval_s, retry=any_error).run(self.refresh)

    def _observe_cases(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {"state": state}) for state, n in sorted(self.cases.items())]

    def _observe_stuck(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {"department": d}) for d, n in sorted(self.stuck.items())]
