"""The deadline watch: fires due deadlines (吹哨, 属地兜底), exactly once across any number of
dispatch instances.

Deadlines live in the `deadlines` table, so they survive restarts. "Due" is judged on the database's
clock (the statement's start), the clock the due times were computed on (store.db_now), never on this
instance's: instances whose clocks disagree neither fire a deadline early nor hold it late. Each pass
reads the due running deadlines (no lock), then fires each in its own transaction: the case row is locked with SKIP LOCKED
(a case busy elsewhere is left for the next pass), the deadline row is re-read under that lock, and
the transition that fires it marks it `fired` in the same commit; a unique index on
transitions.deadline_id backs this up. An instance killed mid-transaction leaves nothing behind: its
transaction rolls back and another instance fires the deadline.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch.desk import Desk
from onegrid.periodic import Periodic

log = logging.getLogger(__name__)

# Due by the database's clock: the statement's own start, not clock_timestamp(). (The statement runs
# alone in its transaction, so they agree; but a volatile function cannot bound an index scan, and
# PostgreSQL would then walk every running deadline, filtering row by row, twice a second.)
DUE = (
    "SELECT deadline_id::text, case_id::text FROM deadlines "
    "WHERE status = 'running' AND due_at <= statement_timestamp() ORDER BY due_at LIMIT :n"
)


class DeadlineWatch:
    def __init__(self, engine: AsyncEngine, desk: Desk, *, poll_s: float = 0.5, batch: int = 100) -> None:
        self._engine = engine
        self._desk = desk
        self._poll_s = poll_s
        self._batch = batch
        self._job = Periodic("deadline watch", poll_s)
        self.fired = 0

    def stop(self) -> None:
        self._job.stop()

    async def fire_due(self) -> int:
        """One pass: fire what is due now; the number fired by this instance."""
        async with self._engine.connect() as conn:
            due = (
                await conn.execute(
                    text(DUE),
                    {"n": self._batch},
                )
            ).all()
        fired = 0
        for deadline_id, case_id in due:
            outcome = await self._desk.fire_deadline(deadline_id, case_id)
            if outcome == "fired":
                fired += 1
            elif outcome.startswith("refused:") and outcome != "refused:deadline.stale":
                log.warning("deadline %s of case %s could not fire: %s", deadline_id, case_id, outcome)
        self.fired += fired
        return fired

    async def run(self) -> None:
        """Fire until `stop()`: a full batch is followed at once, otherwise after `poll_s`."""
        await self._job.run(self.fire_due, again=lambda n: n >= self._batch)
