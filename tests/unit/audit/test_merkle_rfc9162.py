"""merkle.py against an independent reading of RFC 9162 section 2.1, written here without importing it.

The reference below follows the RFC text literally (recursive MTH of 2.1.1, PATH of 2.1.3.1, PROOF and
SUBPROOF of 2.1.4.1, the verification steps of 2.1.3.2 and 2.1.4.2), plus the published RFC 6962 test
vectors that every CT implementation shares.
"""

from __future__ import annotations

import hashlib

import pytest

from audit.domain import merkle

# --- Independent reference, straight from the RFC ------------------------------------------------------


def ref_hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def ref_mth(d: list[bytes]) -> bytes:
    """2.1.1: MTH({}) = HASH(), MTH({d0}) = HASH(0x00 || d0), else split at the largest power of two < n."""
    n = len(d)
    if n == 0:
        return ref_hash(b"")
    if n == 1:
        return ref_hash(b"\x00" + d[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return ref_hash(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    """2.1.3.1 PATH(m, D[n])."""
    n = len(d)
    if n == 1:
        return []
    k = ref_k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """2.1.4.1 SUBPROOF(m, D[n], b)."""
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = ref_k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_verify_inclusion(
    leaf_index: int, tree_size: int, hash_: bytes, path: list[bytes], root: bytes
) -> bool:
    """2.1.3.2, step by step."""
    # 1. leaf_index >= tree_size fails.
    if leaf_index >= tree_size:
        return False
    # 2. fn = leaf_index, sn = tree_size - 1.   3. r = hash.
    fn, sn, r = leaf_index, tree_size - 1, hash_
    # 4. For each value p in the inclusion_path array:
    for p in path:
        # a. If sn is 0, stop and fail.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn:
        if fn % 2 == 1 or fn == sn:
            # i. r = HASH(0x01 || p || r)
            r = ref_hash(b"\x01" + p + r)
            # ii. If LSB(fn) is not set, right-shift fn and sn until LSB(fn) is set or fn is 0.
            if fn % 2 == 0:
                while not (fn % 2 == 1 or fn == 0):
                    fn, sn = fn // 2, sn // 2
        else:
            # i. r = HASH(0x01 || r || p)
            r = ref_hash(b"\x01" + r + p)
        # c. Right-shift both fn and sn one time.
        fn, sn = fn // 2, sn // 2
    # 5. sn must be 0 and r must equal root_hash.
    return sn == 0 and r == root


def ref_verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, path: list[bytes]
) -> bool:
    """2.1.4.2, step by step (0 < first < second)."""
    # 1. An empty consistency_path fails.
    if not path:
        return False
    # 2. If first is an exact power of 2, prepend first_hash.
    if first & (first - 1) == 0:
        path = [first_hash, *path]
    # 3. fn = first - 1, sn = second - 1.
    fn, sn = first - 1, second - 1
    # 4. If LSB(fn) is set, right-shift fn and sn equally until LSB(fn) is not set.
    while fn % 2 == 1:
        fn, sn = fn // 2, sn // 2
    # 5. fr = sr = first value of the path.
    fr = sr = path[0]
    # 6. For each subsequent value c:
    for c in path[1:]:
        # a. If sn is 0, stop and fail.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or fn == sn:
        if fn % 2 == 1 or fn == sn:
            fr = ref_hash(b"\x01" + c + fr)
            sr = ref_hash(b"\x01" + c + sr)
            if fn % 2 == 0:
                while not (fn % 2 == 1 or fn == 0):
                    fn, sn = fn // 2, sn // 2
        else:
            sr = ref_hash(b"\x01" + sr + c)
        # c. Right-shift both one time.
        fn, sn = fn // 2, sn // 2
    # 7. fr == first_hash, sr == second_hash and sn == 0.
    return fr == first_hash and sr == second_hash and sn == 0


# --- Published RFC 6962 vectors (certificate-transparency / transparency-dev test data) -----------------

CT_INPUTS = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f"]]  # fmt: skip
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
H_0_1 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
H_2_4 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
H_4_8 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
H_4 = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
H_6_8 = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
H_0_4 = CT_ROOTS[4]
H_5 = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
CT_LEAVES = [merkle.leaf_hash(d) for d in CT_INPUTS]


def test_ct_roots_for_every_size() -> None:
    for n in range(9):
        assert merkle.root(CT_LEAVES[:n]).hex() == CT_ROOTS[n]
        assert ref_mth(CT_INPUTS[:n]).hex() == CT_ROOTS[n]


@pytest.mark.parametrize(
    ("index", "size", "proof"),
    [(0, 8, [H_0_1, H_2_4, H_4_8]), (5, 8, [H_4, H_6_8, H_0_4]), (0, 1, [])],
)
def test_ct_inclusion_vectors(index: int, size: int, proof: list[str]) -> None:
    assert [p.hex() for p in merkle.inclusion_proof(index, CT_LEAVES[:size])] == proof
    root = bytes.fromhex(CT_ROOTS[size])
    assert merkle.verify_inclusion(index, size, CT_LEAVES[index], [bytes.fromhex(p) for p in proof], root)


@pytest.mark.parametrize(
    ("m", "n", "proof"),
    [(1, 1, []), (1, 8, [H_0_1, H_2_4, H_4_8]), (6, 8, [H_5, H_6_8, H_0_4]), (2, 5, [H_2_4, H_4])],
)
def test_ct_consistency_vectors(m: int, n: int, proof: list[str]) -> None:
    assert [p.hex() for p in merkle.consistency_proof(m, CT_LEAVES[:n])] == proof
    roots = bytes.fromhex(CT_ROOTS[m]), bytes.fromhex(CT_ROOTS[n])
    assert merkle.verify_consistency(m, n, *roots, [bytes.fromhex(p) for p in proof])


# --- Exhaustive agreement on small trees -----------------------------------------------------------------

DATA = [f"entry {i}".encode() for i in range(64)]
LEAVES = [merkle.leaf_hash(d) for d in DATA]
REF_ROOTS = [ref_mth(DATA[:n]) for n in range(65)]


def _flip(proof: list[bytes], i: int) -> list[bytes]:
    changed = list(proof)
    changed[i] = bytes([changed[i][0] ^ 1]) + changed[i][1:]
    return changed


def test_root_matches_recursive_mth_for_every_size() -> None:
    assert [merkle.root(LEAVES[:n]) for n in range(65)] == REF_ROOTS


def test_every_inclusion_proof_up_to_64_leaves() -> None:
    for size in range(1, 65):
        for index in range(size):
            proof = merkle.inclusion_proof(index, LEAVES[:size])
            assert proof == ref_path(index, DATA[:size]), (index, size)
            assert ref_verify_inclusion(index, size, LEAVES[index], proof, REF_ROOTS[size])
            assert merkle.verify_inclusion(index, size, LEAVES[index], proof, REF_ROOTS[size])
            # Wrong leaf, index, size, root or any proof node: both verifiers refuse.
            other = LEAVES[(index + 1) % size]
            assert size == 1 or not merkle.verify_inclusion(index, size, other, proof, REF_ROOTS[size])
            assert not merkle.verify_inclusion(index, size, LEAVES[index], proof, REF_ROOTS[size - 1])
            assert not merkle.verify_inclusion(size, size, LEAVES[index], proof, REF_ROOTS[size])
            assert not merkle.verify_inclusion(
                index, size, LEAVES[index], [*proof, LEAVES[0]], REF_ROOTS[size]
            )
            for i in range(len(proof)):
                assert not merkle.verify_inclusion(
                    index, size, LEAVES[index], _flip(proof, i), REF_ROOTS[size]
                )
                assert not ref_verify_inclusion(index, size, LEAVES[index], _flip(proof, i), REF_ROOTS[size])
            if index + 1 < size:
                assert not merkle.verify_inclusion(index + 1, size, LEAVES[index], proof, REF_ROOTS[size])


def test_every_consistency_proof_up_to_40_leaves() -> None:
    for n in range(1, 41):
        for m in range(1, n):
            proof = merkle.consistency_proof(m, LEAVES[:n])
            assert proof == ref_subproof(m, DATA[:n], True), (m, n)
            assert ref_verify_consistency(m, n, REF_ROOTS[m], REF_ROOTS[n], proof)
            assert merkle.verify_consistency(m, n, REF_ROOTS[m], REF_ROOTS[n], proof)
            assert not merkle.verify_consistency(m, n, REF_ROOTS[m - 1], REF_ROOTS[n], proof)
            assert not merkle.verify_consistency(m, n, REF_ROOTS[m], REF_ROOTS[n - 1], proof)
            assert not merkle.verify_consistency(m, n, REF_ROOTS[m], REF_ROOTS[n], proof[:-1])
            for i in range(len(proof)):
                assert not merkle.verify_consistency(m, n, REF_ROOTS[m], REF_ROOTS[n], _flip(proof, i))
                assert not ref_verify_consistency(m, n, REF_ROOTS[m], REF_ROOTS[n], _flip(proof, i))


def test_consistency_edges() -> None:
    assert merkle.consistency_proof(0, LEAVES[:5]) == []
    assert merkle.consistency_proof(5, LEAVES[:5]) == []
    assert merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, REF_ROOTS[5], [])
    assert not merkle.verify_consistency(0, 5, REF_ROOTS[1], REF_ROOTS[5], [])
    assert merkle.verify_consistency(5, 5, REF_ROOTS[5], REF_ROOTS[5], [])
    assert not merkle.verify_consistency(5, 5, REF_ROOTS[5], REF_ROOTS[4], [])
    assert not merkle.verify_consistency(6, 5, REF_ROOTS[5], REF_ROOTS[5], [])
    assert not merkle.verify_consistency(3, 5, REF_ROOTS[3], REF_ROOTS[5], [])
    with pytest.raises(ValueError):
        merkle.consistency_proof(6, LEAVES[:5])


def test_inclusion_edges() -> None:
    assert not merkle.verify_inclusion(0, 0, LEAVES[0], [], merkle.EMPTY_ROOT)
    assert not merkle.verify_inclusion(-1, 3, LEAVES[0], [], REF_ROOTS[3])
    with pytest.raises(ValueError):
        merkle.inclusion_proof(3, LEAVES[:3])


def test_inclusion_verdicts_agree_with_the_reference_for_every_claimed_size() -> None:
    # A proof checked under a wrong tree size must fail the same way the RFC steps do (step 5's sn == 0).
    assert not merkle.verify_inclusion(0, 3, LEAVES[0], [LEAVES[1]], REF_ROOTS[2])
    for size in range(1, 33):
        for index in range(size):
            proof = merkle.inclusion_proof(index, LEAVES[:size])
            for claimed in range(1, 34):
                args = (index, claimed, LEAVES[index], proof, REF_ROOTS[size])
                assert merkle.verify_inclusion(*args) == ref_verify_inclusion(*args), (index, size, claimed)


def test_consistency_verdicts_agree_with_the_reference_for_every_claimed_pair() -> None:
    for n in range(2, 25):
        for m in range(1, n):
            proof = merkle.consistency_proof(m, LEAVES[:n])
            for claimed_m in range(1, 26):
                for claimed_n in range(claimed_m + 1, 26):
                    args = (claimed_m, claimed_n, REF_ROOTS[m], REF_ROOTS[n], proof)
                    assert merkle.verify_consistency(*args) == ref_verify_consistency(*args), (m, n, args[:2])
