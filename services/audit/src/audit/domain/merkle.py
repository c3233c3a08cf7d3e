"""RFC 9162 (Certificate Transparency 2.0) Merkle tree over SHA-256.

Leaf hash ``H(0x00 || leaf)``, node hash ``H(0x01 || left || right)``; the Merkle Tree Hash (MTH) of n > 1
leaves splits at k, the largest power of two smaller than n (RFC 9162 section 2.1.1). The empty tree's
hash is ``H("")``. Every function here is pure; hashes are 32-byte ``bytes``.

A range ``[start, end)`` below always means leaf indices ``start <= i < end``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, MutableMapping, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """``H(0x00 || data)``: the hash of one leaf's canonical bytes."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``H(0x01 || left || right)``: the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleFrontier:
    """The roots of the perfect subtrees that make up a growing tree: O(log n) memory.

    ``hashes[i]`` is the root of the i-th perfect subtree from the left; there is one per set bit of
    ``size``, largest first. Appending is amortised O(1) hashing; ``root()`` is O(log n). The state
    ``(size, hashes)`` is all there is to persist (``to_bytes``/``from_bytes`` or ``from_state``).
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_state(cls, size: int, hashes: Sequence[bytes]) -> MerkleFrontier:
        """Rebuild from a persisted state; raises ``ValueError`` if it cannot be one."""
        if size < 0 or len(hashes) != size.bit_count() or any(len(h) != HASH_SIZE for h in hashes):
            raise ValueError(f"not a frontier state: size {size} needs {size.bit_count()} 32-byte hashes")
        frontier = cls()
        frontier._size = size
        frontier._hashes = list(hashes)
        return frontier

    @classmethod
    def from_bytes(cls, data: bytes) -> MerkleFrontier:
        """Inverse of ``to_bytes``: 8-byte big-endian size, then the hashes concatenated."""
        if len(data) < 8 or (len(data) - 8) % HASH_SIZE:
            raise ValueError("not a serialized frontier")
        size = int.from_bytes(data[:8], "big")
        return cls.from_state(size, [data[i : i + HASH_SIZE] for i in range(8, len(data), HASH_SIZE)])

    def to_bytes(self) -> bytes:
        return self._size.to_bytes(8, "big") + b"".join(self._hashes)

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash (already ``leaf_hash``-ed)."""
        if len(leaf) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        merged, size = leaf, self._size
        # Each trailing 1-bit of the size is a perfect subtree of the same height as ``merged``.
        while size & 1:
            merged = node_hash(self._hashes.pop(), merged)
            size >>= 1
        self._hashes.append(merged)
        self._size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        """MTH of the leaves appended so far."""
        if not self._hashes:
            return EMPTY_ROOT
        result = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            result = node_hash(left, result)
        return result

    def copy(self) -> MerkleFrontier:
        return MerkleFrontier.from_state(self._size, self._hashes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MerkleFrontier):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    def __hash__(self) -> int:
        return hash((self._size, tuple(self._hashes)))

    def __repr__(self) -> str:
        return f"MerkleFrontier(size={self._size}, root={self.root().hex()})"


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over the given leaf hashes; ``EMPTY_ROOT`` for none."""
    frontier = MerkleFrontier()
    frontier.extend(leaf_hashes)
    return frontier.root()


def inclusion_proof_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose MTHs form PATH(index, D[size]) (RFC 9162 2.1.3.1), leaf-side first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_proof_ranges(m: int, n: int) -> list[tuple[int, int]]:
    """The ranges whose MTHs form PROOF(m, D[n]) (RFC 9162 2.1.4.1); empty when m is 0 or n."""
    if not 0 <= m <= n:
        raise ValueError(f"no consistency proof from size {m} to size {n}")
    if m in (0, n):
        return []
    ranges: list[tuple[int, int]] = []
    start, end, whole = 0, n, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            m -= k
            start += k
            whole = False
    if not whole:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) over all the given leaf hashes."""
    return [root(leaf_hashes[a:b]) for a, b in inclusion_proof_ranges(index, len(leaf_hashes))]


def consistency_proof(m: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) over all the given leaf hashes (n = their number)."""
    return [root(leaf_hashes[a:b]) for a, b in consistency_proof_ranges(m, len(leaf_hashes))]


def verify_inclusion(
    index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes
) -> bool:
    """RFC 9162 2.1.3.2: does ``proof`` show leaf hash ``leaf`` at ``index`` in the tree ``root_hash``?"""
    if not 0 <= index < tree_size:
        return False
    fn, sn, r = index, tree_size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def verify_consistency(m: int, n: int, root_m: bytes, root_n: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 2.1.4.2 for 0 < m < n; m == n and m == 0 need an empty proof and the obvious roots."""
    if not 0 <= m <= n:
        return False
    if m == n:
        return not proof and root_m == root_n
    if m == 0:
        return not proof and root_m == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if m & (m - 1) == 0:
        path.insert(0, root_m)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == root_m and sr == root_n and sn == 0


GetRange = Callable[[int, int], Sequence[bytes]]


class StoredTree:
    """Roots and proofs over leaf hashes kept elsewhere (e.g. PostgreSQL), read through ``get_range``.

    ``get_range(start, end)`` must return exactly the ``end - start`` stored leaf hashes of that range.
    Roots of perfect, aligned subtrees never change once complete, so those of height at least
    ``cache_from_height`` are memoised in ``cache`` (any mapping; persist it to keep the work across
    restarts), keyed ``(height, start >> height)``. Leaves are fetched at most ``fetch_limit`` at a time,
    so a proof on a warm cache costs O(log n) cache reads and a few small range reads. Callers must not
    ask about sizes larger than what is stored. Not thread-safe unless ``cache`` is.
    """

    def __init__(
        self,
        get_range: GetRange,
        *,
        cache: MutableMapping[tuple[int, int], bytes] | None = None,
        cache_from_height: int = 8,
        fetch_limit: int = 1 << 16,
    ) -> None:
        if fetch_limit < 1 << cache_from_height:
            raise ValueError("fetch_limit must hold at least one cached subtree")
        self._get_range = get_range
        self.cache: MutableMapping[tuple[int, int], bytes] = {} if cache is None else cache
        self._cache_from = cache_from_height
        self._fetch_limit = fetch_limit

    def root(self, size: int) -> bytes:
        return self.range_root(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return [self.range_root(a, b) for a, b in inclusion_proof_ranges(index, size)]

    def consistency_proof(self, m: int, n: int) -> list[bytes]:
        return [self.range_root(a, b) for a, b in consistency_proof_ranges(m, n)]

    def range_root(self, start: int, end: int) -> bytes:
        """MTH of ``[start, end)``, a subtree of the RFC 9162 tree: ``start`` is a multiple of the
        smallest power of two not below ``end - start`` (every proof range is)."""
        width = end - start
        if width < 1 or start % (1 << (width - 1).bit_length()):
            raise ValueError(f"[{start}, {end}) is not a subtree of the log")
        # Perfect subtrees of the binary decomposition of the width, left to right, then folded right.
        parts: list[bytes] = []
        for height in range(width.bit_length() - 1, -1, -1):
            if width >> height & 1:
                parts.append(self._perfect_root(height, start >> height))
                start += 1 << height
        result = parts[-1]
        for left in reversed(parts[:-1]):
            result = node_hash(left, result)
        return result

    def _perfect_root(self, height: int, position: int) -> bytes:
        cached = self.cache.get((height, position)) if height >= self._cache_from else None
        if cached is not None:
            return cached
        if 1 << height <= self._fetch_limit:
            return self._hash_up(height, position)
        result = node_hash(
            self._perfect_root(height - 1, 2 * position), self._perfect_root(height - 1, 2 * position + 1)
        )
        self.cache[(height, position)] = result
        return result

    def _hash_up(self, height: int, position: int) -> bytes:
        start = position << height
        level = list(self._get_range(start, start + (1 << height)))
        if len(level) != 1 << height:
            raise ValueError(f"get_range({start}, {start + (1 << height)}) returned {len(level)} hashes")
        for h in range(1, height + 1):
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
            if h >= self._cache_from:
                first = position << (height - h)
                for offset, value in enumerate(level):
                    self.cache[(h, first + offset)] = value
        return level[0]
