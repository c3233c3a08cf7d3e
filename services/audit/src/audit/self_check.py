"""The log checks its own newest signed head the way an external verifier would (contracts/audit/
README.md): the head's signature under the log's public key, and the stored tree against the signed
roots: PROOF(previously checked size, newest size) recomputed from the stored nodes must verify
between the two signed roots (the first check recomputes the newest root itself).

A failure means a stored entry, node or head changed after signing, or the key changed: it is
counted in `audit_head_checks_total{outcome="failed", reason=...}`, logged, and the previously
checked head stays the base, so every later check fails too until someone looks (the alert
OneGridAuditVerifyFailed). A database that does not answer is no verdict: logged and retried.
"""

from __future__ import annotations

import logging
from typing import Protocol

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.domain.merkle import verify_consistency
from audit.domain.tree_head import SignedTreeHead, verify_tree_head
from audit.store import LogDamaged, NotInLog
from onegrid import telemetry
from onegrid.periodic import Periodic

log = logging.getLogger(__name__)


class HeadSource(Protocol):
    async def latest_head(self) -> SignedTreeHead: ...

    async def consistency_proof(self, first: int, second: int) -> tuple[list[bytes], bytes, bytes]: ...


class HeadCheck:
    def __init__(self, store: HeadSource, public_key: Ed25519PublicKey, *, interval_s: float) -> None:
        self._store = store
        self._key = public_key
        self._interval_s = interval_s
        self.checked: SignedTreeHead | None = None
        self._m_checks = telemetry.meter("audit").create_counter(
            "audit_head_checks", description="self-checks of the newest signed tree head, by outcome"
        )

    async def check_once(self) -> str | None:
        """`ok`, `failed:<reason>`, or None when no new head was signed since the last check."""
        try:
            head = await self._store.latest_head()
        except NotInLog:
            return None
        if self.checked is not None and head == self.checked:
            return None
        reason = await self._failure(head)
        if reason is None:
            self.checked = head
            self._m_checks.add(1, {"outcome": "ok", "reason": ""})
            return "ok"
        self._m_checks.add(1, {"outcome": "failed", "reason": reason})
        log.error("tree head %d failed its check: %s", head.tree_size, reason)
        return f"failed:{reason}"

    async def _failure(self, head: SignedTreeHead) -> str | None:
        if not verify_tree_head(head, self._key):
            return "signature"
        base = self.checked
        first = base.tree_size if base is not None else head.tree_size
        if first > head.tree_size:
            return "shrunk"
        try:
            proof, root_first, root_head = await self._store.consistency_proof(first, head.tree_size)
        except LogDamaged:
            return "log_damaged"
        if root_head != head.root_hash:
            return "root_mismatch"
        if base is not None and not (
            root_first == base.root_hash
            and verify_consistency(first, head.tree_size, root_first, root_head, proof)
        ):
            return "inconsistent"
        return None

    async def run(self) -> None:
        await Periodic(
            "tree head check", self._interval_s, retry=_database_hiccup, max_backoff_s=self._interval_s
        ).run(self.check_once)


def _database_hiccup(exc: Exception) -> bool:
    """Reading the log failed (the database away): checked again, never a failed check."""
    return isinstance(exc, OSError | asyncpg.PostgresError | asyncpg.InterfaceError)
