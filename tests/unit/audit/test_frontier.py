"""The incremental frontier and the stored-tree proofs agree with the recursive MTH of RFC 9162 2.1.1."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.domain.merkle import (
    EMPTY_ROOT,
    MerkleFrontier,
    StoredTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
)


def recursive_mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 2.1.1 over leaf hashes, written independently of merkle.py."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + recursive_mth(leaves[:k]) + recursive_mth(leaves[k:])).digest()


def leaves_of(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@given(st.lists(st.binary(max_size=8), max_size=200))
def test_frontier_root_equals_recursive_root_at_every_prefix(data: list[bytes]) -> None:
    leaves = [leaf_hash(d) for d in data]
    frontier = MerkleFrontier()
    assert frontier.root() == EMPTY_ROOT
    for i, leaf in enumerate(leaves):
        frontier.append(leaf)
        assert frontier.size == i + 1
        assert len(frontier.hashes) == (i + 1).bit_count()
    # Checking every prefix against the recursion is quadratic; the last few and the whole suffice.
    assert frontier.root() == recursive_mth(leaves)


@given(st.integers(0, 300), st.lists(st.integers(1, 40), max_size=12))
def test_batches_and_persistence_do_not_change_the_root(n: int, cuts: list[int]) -> None:
    leaves = leaves_of(n)
    whole = MerkleFrontier()
    whole.extend(leaves)
    frontier, start = MerkleFrontier(), 0
    for cut in [*cuts, n]:
        frontier.extend(leaves[start : start + cut])
        start += cut
        # A restart: the service persists the state and reloads it before the next batch.
        frontier = MerkleFrontier.from_bytes(frontier.to_bytes())
        frontier = MerkleFrontier.from_state(frontier.size, frontier.hashes)
    assert frontier == whole
    assert frontier.root() == recursive_mth(leaves)


def test_frontier_refuses_impossible_states() -> None:
    with pytest.raises(ValueError):
        MerkleFrontier.from_state(3, [b"\x00" * 32])
    with pytest.raises(ValueError):
        MerkleFrontier.from_state(1, [b"\x00" * 31])
    with pytest.raises(ValueError):
        MerkleFrontier.from_bytes(b"\x00" * 7)
    with pytest.raises(ValueError):
        MerkleFrontier().append(b"short")


def test_copy_is_independent() -> None:
    frontier = MerkleFrontier()
    frontier.extend(leaves_of(5))
    copy = frontier.copy()
    copy.append(leaf_hash(b"x"))
    assert frontier.size == 5 and copy.size == 6


class CountingStore:
    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves
        self.calls: list[tuple[int, int]] = []

    def __call__(self, start: int, end: int) -> list[bytes]:
        assert 0 <= start < end <= len(self.leaves)
        self.calls.append((start, end))
        return self.leaves[start:end]


@settings(max_examples=60)
@given(st.integers(1, 300), st.integers(0, 4), st.integers(0, 3), st.data())
def test_stored_tree_matches_list_proofs(n: int, cache_from: int, extra: int, data: st.DataObject) -> None:
    leaves = leaves_of(n)
    tree = StoredTree(
        CountingStore(leaves), cache_from_height=cache_from, fetch_limit=1 << (cache_from + extra)
    )
    size = data.draw(st.integers(1, n))
    index = data.draw(st.integers(0, size - 1))
    m = data.draw(st.integers(0, size))
    assert tree.root(size) == recursive_mth(leaves[:size])
    assert tree.inclusion_proof(index, size) == inclusion_proof(index, leaves[:size])
    assert tree.consistency_proof(m, size) == consistency_proof(m, leaves[:size])
    for (height, position), value in tree.cache.items():
        assert height >= cache_from
        assert value == recursive_mth(leaves[position << height : (position + 1) << height])


def test_warm_cache_reads_few_leaves() -> None:
    leaves = leaves_of(5000)
    store = CountingStore(leaves)
    tree = StoredTree(store, cache_from_height=4, fetch_limit=1 << 10)
    tree.root(5000)
    store.calls.clear()
    tree.inclusion_proof(3333, 5000)
    read = sum(end - start for start, end in store.calls)
    # Only subtrees below the cached height are read: at most 16 leaves per level under it.
    assert read <= 4 * 16


def test_stored_tree_refuses_bad_ranges_and_short_reads() -> None:
    tree = StoredTree(lambda start, end: leaves_of(8)[start:end], cache_from_height=1, fetch_limit=4)
    with pytest.raises(ValueError):
        tree.range_root(1, 3)
    with pytest.raises(ValueError):
        tree.root(9)
    assert tree.root(0) == EMPTY_ROOT
    with pytest.raises(ValueError):
        StoredTree(lambda start, end: [], cache_from_height=4, fetch_limit=8)
