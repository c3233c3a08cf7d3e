"""Error policy: which failures are retried, how long to wait, and when dead-lettering must stop.

Transient failures (broker or database unreachable, timeouts) are retried with capped, jittered
exponential backoff: never a hot loop. Poison messages are dead-lettered. The `DlqGuard` stops the
consumer loudly when too many messages are dead-lettered, rather than draining a topic into the DLQ
after, say, a bad deploy.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from aiokafka.errors import KafkaError


class TransientError(Exception):
    """Raise (or wrap) to say: the same input may succeed later; retry, don't dead-letter."""


class Backpressure(Exception):
    """Raised by a handler or sink that cannot take more now; the loop waits and retries the batch."""


class DlqLimitExceeded(RuntimeError):
    """Too many dead letters: the consumer stops instead of draining its input into the DLQ."""


# asyncpg and SQLAlchemy connection failures, named so this module need not import them. A class
# counts when it or any of its bases has one of these names (asyncpg's PostgresConnectionError covers
# AdminShutdownError, CannotConnectNowError and the like).
_TRANSIENT_NAMES = frozenset(
    {
        "PostgresConnectionError",
        "ConnectionDoesNotExistError",
        "CannotConnectNowError",
        "AdminShutdownError",
        "CrashShutdownError",
        # the server ended an idle session (idle_session_timeout, idle_in_transaction_session_timeout):
        # the work succeeds on a new connection
        "IdleSessionTimeoutError",
        "IdleInTransactionSessionTimeoutError",
        "TooManyConnectionsError",
        "InterfaceError",
        "OperationalError",
        "DeadlockDetectedError",
        "SerializationError",
    }
)


# asyncpg's words for a connection whose protocol is still busy with an earlier operation. After an
# outage (PostgreSQL stopped and back) a pooled connection was found so at COMMIT, or when the pool
# reset it on release ("cannot switch to state 15; another operation (2) is in progress"): it can
# never be used again (the pool terminates it), while the same work succeeds on a new connection.
_BUSY = ("another operation", "is in progress", "is cancelling")


def connection_busy(exc: BaseException) -> bool:
    """Whether `exc` is asyncpg saying the connection is stuck in an earlier operation."""
    return type(exc).__name__ in ("InternalClientError", "InterfaceError") and any(
        w in str(exc) for w in _BUSY
    )


def is_transient(exc: BaseException) -> bool:
    """True when the same work may succeed later. SQLAlchemy wraps a driver's error (e.g. `DBAPIError`
    around asyncpg's "the database system is shutting down"), so the chain of causes is followed."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _transient_itself(current):
            return True
        current = current.__cause__ or getattr(current, "orig", None)
    return False


def _transient_itself(exc: BaseException) -> bool:
    if isinstance(exc, TransientError | TimeoutError | ConnectionError):
        return True
    if getattr(exc, "connection_invalidated", False) is True:
        return True  # SQLAlchemy dropped the connection as lost: the work may succeed on a new one
    if isinstance(exc, KafkaError):
        return bool(getattr(exc, "retriable", False))
    if connection_busy(exc):
        return True
    return any(cls.__name__ in _TRANSIENT_NAMES for cls in type(exc).__mro__)


@dataclass
class Backoff:
    initial_s: float = 0.1
    max_s: float = 30.0
    factor: float = 2.0
    attempt: int = 0

    def next_delay(self) -> float:
        base = min(self.max_s, self.initial_s * self.factor**self.attempt)
        self.attempt += 1
        return base * (0.5 + random.random() / 2)

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class DlqGuard:
    """Trips when dead letters exceed `max_ratio` of the last `window` messages (after `min_sample`
    messages) or when `max_consecutive` messages in a row were dead-lettered."""

    max_ratio: float = 0.5
    max_consecutive: int = 1000
    window: int = 1000
    min_sample: int = 100
    _recent: deque[bool] = field(default_factory=deque)
    _dead_in_window: int = 0
    consecutive: int = 0

    def after(self, outcomes: list[bool]) -> DlqGuard:
        """The guard as it would be after `outcomes` (raises if they trip it); self is unchanged, so
        a batch that is retried is counted once, when its result is kept."""
        trial = DlqGuard(
            self.max_ratio,
            self.max_consecutive,
            self.window,
            self.min_sample,
            deque(self._recent),
            self._dead_in_window,
            self.consecutive,
        )
        trial.observe(outcomes)
        return trial

    def observe(self, outcomes: list[bool]) -> None:
        """`outcomes`: one bool per processed message, True when it was dead-lettered, in order."""
        for dead in outcomes:
            self._recent.append(dead)
            self._dead_in_window += dead
            if len(self._recent) > self.window:
                self._dead_in_window -= self._recent.popleft()
            self.consecutive = self.consecutive + 1 if dead else 0
            if self.consecutive >= self.max_consecutive:
                raise DlqLimitExceeded(f"{self.consecutive} consecutive messages dead-lettered")
        n = len(self._recent)
        if n >= self.min_sample and self._dead_in_window / n > self.max_ratio:
            raise DlqLimitExceeded(
                f"{self._dead_in_window} of the last {n} messages dead-lettered (limit {self.max_ratio:.0%})"
            )
