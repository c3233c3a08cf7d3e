"""Signing tree heads: every ``every_entries`` new entries, or after ``interval_s`` when any are unsigned.

Contract of ``HeadSigner.sign_if_due()``: under a transaction-scoped advisory lock (so several
instances never sign out of order), it reads the log's committed size and Merkle frontier, signs
"the first ``size`` leaves have this root" at a timestamp never earlier than the previous head's,
stores the head (insert only) and then publishes it on ``audit.heads.v1`` (key = key_id, the JSON of
``contracts/schemas/signed-tree-head.v1.json``). A head that could not be published is retried on the
next tick; it is in the database and the API in any case.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from opentelemetry.metrics import CallbackOptions, Observation

from audit.database import Database
from audit.domain.merkle import MerkleFrontier
from audit.domain.tree_head import SignedTreeHead, sign_tree_head
from onegrid import telemetry
from onegrid.periodic import Periodic

log = logging.getLogger(__name__)

Publish = Callable[[SignedTreeHead], Awaitable[None]]


def head_message(head: SignedTreeHead) -> dict[str, Any]:
    """The ``audit.heads.v1`` value (hashes and signature in standard base64, per the schema)."""
    return {
        "tree_size": head.tree_size,
        "root_hash": base64.b64encode(head.root_hash).decode("ascii"),
        "timestamp": head.timestamp,
        "key_id": head.key_id,
        "signature": base64.b64encode(head.signature).decode("ascii"),
    }


def head_bytes(head: SignedTreeHead) -> bytes:
    return json.dumps(head_message(head), separators=(",", ":")).encode()


class HeadSigner:
    def __init__(
        self,
        db: Database,
        key: Ed25519PrivateKey,
        *,
        every_entries: int,
        interval_s: float,
        publish: Publish | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._db = db
        self._key = key
        self._every = every_entries
        self._interval_ms = int(interval_s * 1000)
        self._publish = publish
        self._clock_ms = clock_ms
        self._unpublished: list[SignedTreeHead] = []
        # What the last tick saw, for the gauges: entries in the log, the newest signed head.
        self.log_size: int | None = None
        self.head_size: int | None = None
        self.head_timestamp_ms: int | None = None
        m = telemetry.meter("audit")
        m.create_observable_gauge(
            "audit_log_entries", callbacks=[self._observe_log_size], description="entries in the audit log"
        )
        m.create_observable_gauge(
            "audit_signed_tree_size",
            callbacks=[self._observe_head_size],
            description="entries covered by the newest signed tree head",
        )
        m.create_observable_gauge(
            "audit_last_signed_head_timestamp",
            unit="s",
            callbacks=[self._observe_head_time],
            description="when the newest tree head was signed (Unix seconds)",
        )

    async def sign_if_due(self, *, force: bool = False) -> SignedTreeHead | None:
        """Sign a head if the log grew enough or long enough ago (or ``force`` and it grew at all, or no
        head exists yet); returns it, or None when nothing was due."""
        async with self._db.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL ROLE audit_writer")
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.tree_head'))")
            state = await conn.fetchrow("SELECT size, frontier FROM log_state")
            last = await conn.fetchrow(
                "SELECT tree_size, timestamp_ms FROM tree_head ORDER BY tree_size DESC, timestamp_ms DESC LIMIT 1"
            )
            now = self._clock_ms()
            self._saw(state["size"], last)
            if last is not None:
                grown = state["size"] - last["tree_size"]
                old = now - last["timestamp_ms"] >= self._interval_ms
                if grown <= 0 or not (force or grown >= self._every or old):
                    return None
                now = max(now, last["timestamp_ms"])
            frontier = MerkleFrontier.from_bytes(state["frontier"])
            head = sign_tree_head(self._key, frontier.size, frontier.root(), now)
            await conn.execute(
                "INSERT INTO tree_head (tree_size, timestamp_ms, root_hash, key_id, signature) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                head.tree_size,
                head.timestamp,
                head.root_hash,
                head.key_id,
                head.signature,
            )
        self.head_size, self.head_timestamp_ms = head.tree_size, head.timestamp
        self._unpublished.append(head)
        await self.flush()
        return head

    def _saw(self, log_size: int, last: Any) -> None:
        self.log_size = int(log_size)
        if last is not None:
            self.head_size, self.head_timestamp_ms = int(last["tree_size"]), int(last["timestamp_ms"])

    def _observe_log_size(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [] if self.log_size is None else [Observation(self.log_size)]

    def _observe_head_size(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [] if self.head_size is None else [Observation(self.head_size)]

    def _observe_head_time(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [] if self.head_timestamp_ms is None else [Observation(self.head_timestamp_ms / 1000)]

    async def flush(self) -> None:
        """Publish the heads not yet acknowledged by the broker, in signing order."""
        while self._unpublished and self._publish is not None:
            try:
                await self._publish(self._unpublished[0])
            except Exception:
                log.warning("publishing tree head %d failed; will retry", self._unpublished[0].tree_size)
                return
            self._unpublished.pop(0)

    async def run(self) -> None:
        """Sign on the cadence until cancelled; database hiccups are logged and retried next tick."""
        tick = max(0.05, min(1.0, self._interval_ms / 1000 / 4))
        await Periodic("tree head signer", tick, retry=_database_hiccup, max_backoff_s=tick).run(
            self.sign_if_due
        )


def _database_hiccup(exc: Exception) -> bool:
    return isinstance(exc, OSError | asyncpg.PostgresError | asyncpg.InterfaceError)
