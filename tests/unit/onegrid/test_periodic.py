"""The periodic-job runner every background job uses: stop and wake cut a wait short, a full batch
runs again at once, transient failures are retried with backoff and anything else leaves the job."""

from __future__ import annotations

import asyncio

import pytest

from onegrid.periodic import Periodic, any_error

# A wait none of these tests may sit through: a job that ends proves it was cut short.
HOUR = 3600.0


@pytest.mark.asyncio
async def test_stop_ends_the_wait_between_ticks() -> None:
    job = Periodic("t", HOUR)
    ticked = asyncio.Event()

    async def tick() -> None:
        ticked.set()

    task = asyncio.create_task(job.run(tick))
    await ticked.wait()
    job.stop()
    await asyncio.wait_for(task, timeout=30)
    assert job.stopping


@pytest.mark.asyncio
async def test_wake_runs_the_next_tick_without_the_interval() -> None:
    job = Periodic("t", HOUR)
    ticks: list[int] = []
    first = asyncio.Event()

    async def tick() -> None:
        ticks.append(1)
        first.set()
        if len(ticks) == 2:
            job.stop()

    task = asyncio.create_task(job.run(tick))
    await first.wait()
    job.wake()
    await asyncio.wait_for(task, timeout=30)
    assert len(ticks) == 2


@pytest.mark.asyncio
async def test_a_full_batch_runs_again_at_once() -> None:
    job = Periodic("t", HOUR)
    sizes = iter([100, 100, 3])

    async def tick() -> int:
        n = next(sizes)
        if n < 100:
            job.stop()
        return n

    await asyncio.wait_for(job.run(tick, again=lambda n: n >= 100), timeout=30)
    assert next(sizes, None) is None


@pytest.mark.asyncio
async def test_a_transient_failure_is_retried_and_a_bug_leaves_the_job() -> None:
    job = Periodic("t", HOUR, initial_backoff_s=0.001, max_backoff_s=0.01)
    outcomes: list[BaseException | None] = [ConnectionError("away"), TimeoutError(), ValueError("bug")]

    async def tick() -> None:
        failure = outcomes.pop(0)
        if failure is not None:
            raise failure

    with pytest.raises(ValueError, match="bug"):
        await asyncio.wait_for(job.run(tick), timeout=30)
    assert outcomes == []


@pytest.mark.asyncio
async def test_a_job_that_tolerates_any_error_goes_on_after_a_bug() -> None:
    job = Periodic("gauges", HOUR, retry=any_error, initial_backoff_s=0.001, max_backoff_s=0.01)
    calls: list[int] = []

    async def tick() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("bug")
        job.stop()

    await asyncio.wait_for(job.run(tick), timeout=30)
    assert len(calls) == 2
