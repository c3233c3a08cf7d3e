"""The audit log's self-check of its newest signed head, on an in-memory log: honest growth passes,
a changed entry, a foreign signature or a rewritten history fails, and keeps failing."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.domain.merkle import consistency_proof, leaf_hash, root
from audit.domain.tree_head import SignedTreeHead, sign_tree_head
from audit.self_check import HeadCheck
from audit.store import NotInLog

KEY = Ed25519PrivateKey.generate()


class MemoryLog:
    def __init__(self) -> None:
        self.leaves: list[bytes] = []
        self.heads: list[SignedTreeHead] = []

    def append(self, n: int) -> None:
        start = len(self.leaves)
        self.leaves += [leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(start, start + n)]

    def sign(self, key: Ed25519PrivateKey = KEY) -> SignedTreeHead:
        head = sign_tree_head(key, len(self.leaves), root(self.leaves), 1_000 + len(self.heads))
        self.heads.append(head)
        return head

    async def latest_head(self) -> SignedTreeHead:
        if not self.heads:
            raise NotInLog("no head")
        return self.heads[-1]

    async def consistency_proof(self, first: int, second: int) -> tuple[list[bytes], bytes, bytes]:
        d = self.leaves[:second]
        proof = consistency_proof(first, d) if 0 < first < second else []
        return proof, root(self.leaves[:first]), root(d)


async def test_honest_growth_passes_and_nothing_new_is_no_check() -> None:
    log = MemoryLog()
    check = HeadCheck(log, KEY.public_key(), interval_s=1)
    assert await check.check_once() is None  # no head yet
    log.append(5)
    log.sign()
    assert await check.check_once() == "ok"
    assert await check.check_once() is None
    log.append(12)
    log.sign()
    assert await check.check_once() == "ok"
    assert check.checked == log.heads[-1]


async def test_an_entry_changed_after_signing_fails_and_keeps_failing() -> None:
    log = MemoryLog()
    check = HeadCheck(log, KEY.public_key(), interval_s=1)
    log.append(8)
    log.sign()
    assert await check.check_once() == "ok"
    log.append(8)
    log.sign()
    log.leaves[3] = leaf_hash(b"rewritten")  # history rewritten below the checked head
    assert await check.check_once() == "failed:root_mismatch"
    assert await check.check_once() == "failed:root_mismatch"  # the base stays: no silent recovery


async def test_a_history_rewritten_and_re_signed_is_inconsistent_with_the_checked_head() -> None:
    log = MemoryLog()
    check = HeadCheck(log, KEY.public_key(), interval_s=1)
    log.append(8)
    log.sign()
    assert await check.check_once() == "ok"
    log.leaves[2] = leaf_hash(b"rewritten")
    log.append(8)
    log.sign()  # a head signed over the rewritten log: its own root matches, the old one does not
    assert await check.check_once() == "failed:inconsistent"


async def test_a_head_signed_by_another_key_fails() -> None:
    log = MemoryLog()
    check = HeadCheck(log, KEY.public_key(), interval_s=1)
    log.append(4)
    log.sign(Ed25519PrivateKey.generate())
    assert await check.check_once() == "failed:signature"
