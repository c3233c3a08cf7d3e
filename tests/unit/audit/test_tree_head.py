"""Signed tree heads: exact signing input, Ed25519 signatures, key ids and key loading."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key

from audit.domain.tree_head import (
    MalformedTreeHead,
    SignedTreeHead,
    key_id,
    load_private_key,
    load_public_key,
    raw_public_key,
    sign_tree_head,
    signing_input,
    verify_tree_head,
)

README = Path(__file__).parents[3] / "contracts" / "audit" / "README.md"
SEED = bytes(range(32))
KEY = Ed25519PrivateKey.from_private_bytes(SEED)
ROOT = bytes.fromhex("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77")
TIMESTAMP = 1714550400000


def test_signing_input_is_exactly_the_documented_bytes() -> None:
    expected = (
        b"OneGrid audit tree head v1\x00" + (3).to_bytes(8, "big") + TIMESTAMP.to_bytes(8, "big") + ROOT
    )
    assert signing_input(3, ROOT, TIMESTAMP) == expected


def test_key_id_is_first_eight_bytes_of_sha256_of_the_raw_key() -> None:
    raw = raw_public_key(KEY.public_key())
    assert len(raw) == 32
    assert key_id(KEY.public_key()) == hashlib.sha256(raw).hexdigest()[:16]


def test_readme_worked_example_matches_the_code() -> None:
    sth = sign_tree_head(KEY, 3, ROOT, TIMESTAMP)
    text = README.read_text(encoding="utf-8")
    flat = text.replace("\n", "").replace(" ", "")
    assert sth.signing_input().hex() in flat
    assert sth.signature.hex() in flat
    assert sth.key_id in text
    assert base64.b64encode(raw_public_key(KEY.public_key())).decode() in text


def test_signed_head_verifies_and_any_change_breaks_it() -> None:
    sth = sign_tree_head(KEY, 3, ROOT, TIMESTAMP)
    public = KEY.public_key()
    assert verify_tree_head(sth, public)
    for change in (
        {"tree_size": 4},
        {"timestamp": TIMESTAMP + 1},
        {"root_hash": bytes(32)},
        {"signature": bytes(64)},
        {"key_id": "0" * 16},
    ):
        assert not verify_tree_head(dataclasses.replace(sth, **change), public), change
    other = Ed25519PrivateKey.generate()
    assert not verify_tree_head(sth, other.public_key())
    # Same key id claimed, different key: the signature decides.
    forged = dataclasses.replace(sign_tree_head(other, 3, ROOT, TIMESTAMP), key_id=sth.key_id)
    assert not verify_tree_head(forged, public)


def test_export_round_trip_with_and_without_proof() -> None:
    sth = sign_tree_head(KEY, 3, ROOT, TIMESTAMP)
    assert SignedTreeHead.from_export(json.loads(json.dumps(sth.to_export()))) == (sth, None)
    proof = [bytes(32), ROOT]
    assert SignedTreeHead.from_export(sth.to_export(proof)) == (sth, proof)


@pytest.mark.parametrize(
    "change",
    [
        {"tree_size": -1},
        {"tree_size": "3"},
        {"timestamp": True},
        {"root_hash": "00"},
        {"signature": "!"},
        {"x": 1},
    ],
)
def test_malformed_head_records(change: dict[str, object]) -> None:
    record = {**sign_tree_head(KEY, 3, ROOT, TIMESTAMP).to_export(), **change}
    with pytest.raises(MalformedTreeHead):
        SignedTreeHead.from_export(record)


def test_keys_load_from_pem_and_raw_base64() -> None:
    public = KEY.public_key()
    pem_public = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    raw_public = base64.b64encode(raw_public_key(public)) + b"\n"
    for data in (pem_public, raw_public):
        assert raw_public_key(load_public_key(data)) == raw_public_key(public)
    pem_private = KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    for data in (pem_private, base64.b64encode(SEED)):
        loaded = load_private_key(data)
        assert raw_public_key(loaded.public_key()) == raw_public_key(public)


def test_keys_of_the_wrong_kind_are_refused() -> None:
    rsa = generate_private_key(public_exponent=65537, key_size=1024)
    rsa_pem = rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(MalformedTreeHead, match="Ed25519"):
        load_public_key(rsa_pem)
    with pytest.raises(MalformedTreeHead, match="32 bytes"):
        load_public_key(base64.b64encode(bytes(31)))
    with pytest.raises(MalformedTreeHead, match="neither PEM nor base64"):
        load_private_key(b"not a key")
