"""Signed tree heads: the log's Ed25519-signed statement "the first ``tree_size`` leaves have this root".

Signing input (exactly; see ``contracts/audit/README.md``)::

    b"OneGrid audit tree head v1\\x00" || uint64be(tree_size) || uint64be(timestamp) || root_hash (32 bytes)

``timestamp`` is milliseconds since 1970-01-01T00:00:00Z, as in RFC 9162. ``key_id`` is the hex of the
first 8 bytes of SHA-256 over the raw 32-byte public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNING_CONTEXT = b"OneGrid audit tree head v1\x00"
_MAX_U64 = (1 << 64) - 1


class MalformedTreeHead(ValueError):
    """A tree head record or key that cannot be read; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    """``tree_size`` leaves hash to ``root_hash`` (32 bytes), signed at ``timestamp`` (ms since epoch)
    by the key ``key_id`` with the 64-byte Ed25519 ``signature``."""

    tree_size: int
    root_hash: bytes
    timestamp: int
    key_id: str
    signature: bytes

    def signing_input(self) -> bytes:
        return signing_input(self.tree_size, self.root_hash, self.timestamp)

    def to_export(self, consistency_proof: Sequence[bytes] | None = None) -> dict[str, Any]:
        """The JSON Lines record of ``heads.jsonl``; ``consistency_proof`` is PROOF(previous size, this
        size) from the previous head in the same file, when the exporter ships one."""
        record: dict[str, Any] = {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "timestamp": self.timestamp,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }
        if consistency_proof is not None:
            record["consistency_proof"] = [node.hex() for node in consistency_proof]
        return record

    @classmethod
    def from_export(cls, record: object) -> tuple[SignedTreeHead, list[bytes] | None]:
        """Parse one ``heads.jsonl`` record into the head and its shipped consistency proof, if any."""
        if not isinstance(record, dict):
            raise MalformedTreeHead("record is not a JSON object")
        known = {"tree_size", "root_hash", "timestamp", "key_id", "signature", "consistency_proof"}
        if unknown := set(record) - known:
            raise MalformedTreeHead(f"unknown fields {sorted(unknown)}")
        try:
            size, timestamp, kid = record["tree_size"], record["timestamp"], record["key_id"]
            root_hash = bytes.fromhex(record["root_hash"])
            signature = base64.b64decode(record["signature"], validate=True)
            shipped = record.get("consistency_proof")
            proof = None if shipped is None else [bytes.fromhex(node) for node in shipped]
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise MalformedTreeHead(f"bad or missing field: {exc!r}") from exc
        if not all(type(v) is int and 0 <= v <= _MAX_U64 for v in (size, timestamp)):
            raise MalformedTreeHead("tree_size and timestamp must be unsigned 64-bit integers")
        if len(root_hash) != 32 or not isinstance(kid, str):
            raise MalformedTreeHead("root_hash must be 32 bytes and key_id a string")
        return cls(size, root_hash, timestamp, kid, signature), proof


def signing_input(tree_size: int, root_hash: bytes, timestamp: int) -> bytes:
    """The exact bytes signed for a tree head."""
    if len(root_hash) != 32:
        raise ValueError("root_hash is 32 bytes")
    return SIGNING_CONTEXT + struct.pack(">QQ", tree_size, timestamp) + root_hash


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 8 bytes of SHA-256 over the raw public key, as 16 lowercase hex digits."""
    return hashlib.sha256(raw_public_key(public_key)).digest()[:8].hex()


def sign_tree_head(private_key: Ed25519PrivateKey, size: int, root: bytes, timestamp: int) -> SignedTreeHead:
    """Sign "the first ``size`` leaves have MTH ``root``" at ``timestamp`` (ms since epoch)."""
    signature = private_key.sign(signing_input(size, root, timestamp))
    return SignedTreeHead(size, root, timestamp, key_id(private_key.public_key()), signature)


def verify_tree_head(sth: SignedTreeHead, public_key: Ed25519PublicKey) -> bool:
    """True iff ``sth`` names this key and its signature over ``signing_input`` verifies."""
    if sth.key_id != key_id(public_key) or len(sth.root_hash) != 32:
        return False
    try:
        public_key.verify(sth.signature, sth.signing_input())
    except InvalidSignature:
        return False
    return True


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo) or base64 of the raw 32 bytes."""
    if b"-----BEGIN" in data:
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise MalformedTreeHead(f"unreadable PEM public key: {exc}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise MalformedTreeHead(f"expected an Ed25519 public key, got {type(key).__name__}")
        return key
    return Ed25519PublicKey.from_public_bytes(_raw32(data))


def load_private_key(data: bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from unencrypted PEM (PKCS#8) or base64 of the raw 32-byte seed."""
    if b"-----BEGIN" in data:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise MalformedTreeHead(f"unreadable PEM private key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise MalformedTreeHead(f"expected an Ed25519 private key, got {type(key).__name__}")
        return key
    return Ed25519PrivateKey.from_private_bytes(_raw32(data))


def _raw32(data: bytes) -> bytes:
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except binascii.Error as exc:
        raise MalformedTreeHead("key is neither PEM nor base64") from exc
    if len(raw) != 32:
        raise MalformedTreeHead(f"a raw Ed25519 key is 32 bytes, got {len(raw)}")
    return raw
