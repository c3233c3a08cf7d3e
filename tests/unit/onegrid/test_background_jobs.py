"""A service's background jobs (outbox relay, deadlines, webhooks, signers) outlive a database that
goes away for a while: a transient failure restarts the job after a backoff; anything else stops it
loudly (liveness fails so the process is restarted)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError

from onegrid.kafka.policy import is_transient
from onegrid.service import Runtime, supervise_job
from onegrid.settings import ServiceSettings


def _database_shutting_down() -> DBAPIError:
    """What SQLAlchemy raises when PostgreSQL is stopping: the asyncpg error wrapped twice."""
    orig = asyncpg.exceptions.CannotConnectNowError("the database system is shutting down")
    adapted = RuntimeError("the database system is shutting down")
    adapted.__cause__ = orig
    err = DBAPIError("connect", None, adapted)
    err.__cause__ = adapted
    return err


def test_a_wrapped_connection_failure_is_transient_and_a_bug_is_not() -> None:
    assert is_transient(_database_shutting_down())
    assert not is_transient(DBAPIError("select", None, ValueError("syntax error at or near")))
    assert not is_transient(ValueError("bug"))


@pytest.mark.asyncio
async def test_a_job_whose_database_went_away_is_restarted() -> None:
    rt = Runtime(settings=ServiceSettings(service_name="t"))
    runs: list[int] = []

    async def relay() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise _database_shutting_down()
        await asyncio.sleep(3600)

    task = asyncio.create_task(supervise_job(rt, relay, "relay", initial_backoff_s=0.01))
    for _ in range(200):
        if len(runs) >= 3:
            break
        await asyncio.sleep(0.01)
    assert len(runs) == 3
    assert rt.failure is None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.asyncio
async def test_a_job_that_fails_for_another_reason_stops_loudly() -> None:
    rt = Runtime(settings=ServiceSettings(service_name="t"))

    async def broken() -> None:
        raise ValueError("bug")

    await supervise_job(rt, broken, "broken", initial_backoff_s=0.01)
    assert isinstance(rt.failure, ValueError)
