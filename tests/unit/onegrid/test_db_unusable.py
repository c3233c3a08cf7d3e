"""The engine's rule for a connection left busy by an earlier operation (the integration test
tests/integration/test_db_engine.py drives it on PostgreSQL): the protocol-level error production saw
after an outage counts as a disconnect, so SQLAlchemy invalidates the connection and the job retries."""

from __future__ import annotations

from types import SimpleNamespace

from asyncpg.exceptions import InterfaceError, PostgresError
from asyncpg.exceptions._base import InternalClientError
from sqlalchemy.exc import DBAPIError

from onegrid.db import _unusable_is_a_disconnect
from onegrid.kafka.policy import is_transient

SEEN = "cannot switch to state 15; another operation (2) is in progress"


def judged(exc: BaseException) -> bool:
    ctx = SimpleNamespace(original_exception=exc, is_disconnect=False)
    _unusable_is_a_disconnect(ctx)  # type: ignore[arg-type]
    return bool(ctx.is_disconnect)


def test_a_connection_busy_with_another_operation_is_lost() -> None:
    assert judged(InternalClientError(SEEN))
    assert judged(InterfaceError("cannot perform operation: another operation is in progress"))


def test_other_errors_leave_the_connection_alone() -> None:
    assert not judged(PostgresError("duplicate key value violates unique constraint"))
    assert not judged(InternalClientError("unexpected message type"))


def test_an_error_on_an_invalidated_connection_is_transient() -> None:
    """Invalidated, any error is worth a retry on a new connection; a busy connection's error is
    transient wrapped or not (the engine invalidates such a connection, asyncpg's pool terminates it,
    and pre-ping would find it), while another protocol error on a connection kept is not."""
    lost = DBAPIError(
        "COMMIT", None, InternalClientError("unexpected message type"), connection_invalidated=True
    )
    busy = DBAPIError("COMMIT", None, InternalClientError(SEEN), connection_invalidated=False)
    kept = DBAPIError(
        "COMMIT", None, InternalClientError("unexpected message type"), connection_invalidated=False
    )
    assert is_transient(lost)
    assert is_transient(busy)
    assert not is_transient(kept)


def test_asyncpg_busy_with_another_operation_is_transient_without_sqlalchemy() -> None:
    """The audit writes through asyncpg's own pool: when PostgreSQL stops under a batch, releasing
    the connection raises this (the pool then terminates it). The same batch succeeds on a new
    connection; taken as the record's fault, a single-record batch was dead-lettered."""
    assert is_transient(InternalClientError(SEEN))
    assert not is_transient(InternalClientError("unexpected message type"))
