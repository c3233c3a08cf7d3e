"""The SignedTreeHead examples are genuinely signed over the canonical encoding the schema specifies.

The encoding is rebuilt here from the schema's own words, so a change to either the text or the
examples that breaks the other fails; the audit service's implementation is checked against it too.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

CONTEXT = b"OneGrid audit tree head v1\x00"
EXAMPLE_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"onegrid example signing key").digest())


def canonical(tree_size: int, timestamp: int, root_hash: bytes) -> bytes:
    return CONTEXT + struct.pack(">QQ", tree_size, timestamp) + root_hash


@pytest.fixture(scope="module")
def schema(schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return schemas["signed-tree-head.v1.json"]


def test_the_schema_states_the_encoding_tested_here(schema: dict[str, Any]) -> None:
    text = schema["description"]
    assert "`OneGrid audit tree head v1` and one 0x00 byte (27 bytes)" in text
    assert "75-byte" in text and len(canonical(0, 0, bytes(32))) == 75


def test_examples_verify_with_the_example_key(schema: dict[str, Any]) -> None:
    public = EXAMPLE_KEY.public_key()
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    for head in schema["examples"]:
        root = base64.b64decode(head["root_hash"], validate=True)
        assert len(root) == 32
        assert head["key_id"] == hashlib.sha256(raw).digest()[:8].hex()
        signature = base64.b64decode(head["signature"], validate=True)
        public.verify(signature, canonical(head["tree_size"], head["timestamp"], root))


def test_a_changed_field_no_longer_verifies(schema: dict[str, Any]) -> None:
    head = schema["examples"][1]
    root = base64.b64decode(head["root_hash"])
    signature = base64.b64decode(head["signature"])
    with pytest.raises(InvalidSignature):
        EXAMPLE_KEY.public_key().verify(signature, canonical(head["tree_size"] + 1, head["timestamp"], root))


def test_the_empty_tree_example_has_the_rfc_9162_empty_root(schema: dict[str, Any]) -> None:
    empty = next(h for h in schema["examples"] if h["tree_size"] == 0)
    assert base64.b64decode(empty["root_hash"]) == hashlib.sha256(b"").digest()


def test_the_audit_service_signs_the_same_bytes() -> None:
    tree_head = pytest.importorskip("audit.domain.tree_head")
    root = hashlib.sha256(b"x").digest()
    assert tree_head.signing_input(7, root, 1772331330512) == canonical(7, 1772331330512, root)
    assert (
        tree_head.key_id(EXAMPLE_KEY.public_key())
        == hashlib.sha256(EXAMPLE_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
        .digest()[:8]
        .hex()
    )
