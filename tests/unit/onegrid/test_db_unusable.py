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


def test_an_error_on_an_invalidated_connection_is_transient_and_not_otherwise() -> None:
    lost = DBAPIError("COMMIT", None, InternalClientError(SEEN), connection_invalidated=True)
    kept = DBAPIError("COMMIT", None, InternalClientError(SEEN), connection_invalidated=False)
    assert is_transient(lost)
    assert not is_transient(kept)
