"""The signing key: required outside development with a message naming the variable, generated into
.run/ in development, and refused when it is not an Ed25519 key."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pydantic import ValidationError

from audit.domain.tree_head import key_id
from audit.settings import Settings


def test_outside_development_a_missing_key_stops_the_service_naming_the_variable() -> None:
    with pytest.raises(ValidationError, match="ONEGRID_AUDIT_SIGNING_KEY"):
        Settings(environment="test")


def test_a_key_that_is_not_ed25519_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="not an Ed25519 private key"):
        Settings(environment="test", signing_key=base64.b64encode(b"short").decode())


def test_base64_raw_key_is_used_as_given() -> None:
    seed = bytes(range(32))
    s = Settings(environment="test", signing_key=base64.b64encode(seed).decode())
    assert s.private_key().private_bytes_raw() == seed
    assert "signing_key" not in repr(s) or base64.b64encode(seed).decode() not in repr(s)


def test_development_generates_one_key_into_the_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEGRID_RUN", str(tmp_path))
    first = Settings(environment="development").private_key()
    again = Settings(environment="development").private_key()
    assert key_id(first.public_key()) == key_id(again.public_key())
    pem = tmp_path / "audit-signing-key.pem"
    assert pem.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pem.stat().st_mode & 0o077 == 0


def test_two_instances_starting_together_sign_with_the_one_key_written_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both audit instances of `make up INSTANCES=2` found no key and each wrote its own, the second
    over the first: the trail's tree heads then named two keys and its export did not verify
    (audit.head_key_mismatch in the fault suite)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    monkeypatch.setenv("ONEGRID_RUN", str(tmp_path))
    other = Ed25519PrivateKey.generate()  # the other instance's key, written while this one generates
    generate = Ed25519PrivateKey.generate

    def racing() -> Ed25519PrivateKey:
        (tmp_path / "audit-signing-key.pem").write_bytes(
            other.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return generate()

    monkeypatch.setattr(Ed25519PrivateKey, "generate", staticmethod(racing))
    mine = Settings(environment="development").private_key()
    assert key_id(mine.public_key()) == key_id(other.public_key())
