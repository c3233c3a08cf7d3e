"""Completed perfect subtrees of the log: what the writer stores so proofs cost O(log n) reads.

A perfect subtree of height ``h`` at ``position`` covers leaves ``[position << h, (position + 1) << h)``;
once its last leaf is appended its root never changes. The writer records every one of height at least
``min_height`` as it completes (about ``2**-min_height`` rows per leaf), in the same transaction as the
leaves. A proof then needs those stored roots plus at most ``2**min_height - 1`` leaf hashes per side.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from audit.domain.merkle import HASH_SIZE, MerkleFrontier, node_hash

Subtree = tuple[int, int]  # (height, position)


@dataclass(frozen=True, slots=True)
class CompletedSubtree:
    height: int
    position: int
    hash: bytes


def append_recording(
    frontier: MerkleFrontier, leaves: Iterable[bytes], *, min_height: int
) -> tuple[MerkleFrontier, list[CompletedSubtree]]:
    """Append ``leaves`` to a copy of ``frontier``; return it and the subtrees of height at least
    ``min_height`` that the appends completed, in completion order. ``frontier`` is not changed."""
    size = frontier.size
    stack = list(frontier.hashes)
    completed: list[CompletedSubtree] = []
    for leaf in leaves:
        if len(leaf) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        merged, bits, height = leaf, size, 0
        size += 1
        # Same merge as MerkleFrontier.append, but every intermediate root is a completed subtree.
        while bits & 1:
            merged = node_hash(stack.pop(), merged)
            bits >>= 1
            height += 1
            if height >= min_height:
                completed.append(CompletedSubtree(height, (size >> height) - 1, merged))
        stack.append(merged)
    return MerkleFrontier.from_state(size, stack), completed


def perfect_subtrees(start: int, end: int) -> list[Subtree]:
    """The perfect subtrees whose roots, folded right to left, give the MTH of ``[start, end)`` when that
    range is a subtree of the log (every proof range is): the binary decomposition of its width."""
    width = end - start
    if width < 1 or start % (1 << (width - 1).bit_length()):
        raise ValueError(f"[{start}, {end}) is not a subtree of the log")
    parts: list[Subtree] = []
    for height in range(width.bit_length() - 1, -1, -1):
        if width >> height & 1:
            parts.append((height, start >> height))
            start += 1 << height
    return parts


def split_subtree(height: int, position: int, min_height: int) -> list[Subtree]:
    """``(height, position)`` itself when it is stored (height at least ``min_height``), else the
    leaves under it as height-0 subtrees."""
    if height >= min_height:
        return [(height, position)]
    first = position << height
    return [(0, i) for i in range(first, first + (1 << height))]
