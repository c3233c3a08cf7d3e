"""Audit settings: the shared base plus the signing key, the head cadence and the tap's own knobs.

The Ed25519 signing key comes from ``ONEGRID_AUDIT_SIGNING_KEY`` (base64 of the raw 32-byte seed, or
an unencrypted PKCS#8 PEM) or from the file named by ``ONEGRID_AUDIT_SIGNING_KEY_FILE``. In development
a missing key is generated into ``.run/audit-signing-key.pem``; in any other environment a missing or
unreadable key stops the service at start with a message naming the variable.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from audit.domain.capture import CASE_TOPICS, DEAD_LETTER_TOPICS, OPAQUE_TOPICS, TopicTrust
from audit.domain.tree_head import MalformedTreeHead, load_private_key
from onegrid.settings import ServiceSettings
from onegrid.topics import audit_tap_pattern

# The tap's subscription, from the catalogue: every topic of the system but the trail's own (its heads
# and dead letters: recording them would make every head cause the next one).
TAP_PATTERN = audit_tap_pattern()


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ONEGRID_AUDIT_", extra="ignore")

    service_name: str = "audit"
    http_port: int = 8004
    db_schema: str = "audit"
    signing_key: str | None = Field(default=None, repr=False)
    signing_key_file: Path | None = None
    # A head is signed when this many entries are unsigned, or after head_interval_s if any are.
    head_every_entries: int = Field(default=10_000, ge=1)
    head_interval_s: float = Field(default=10.0, gt=0)
    # How often the newest signed head is checked against the stored log (audit.self_check).
    head_check_interval_s: float = Field(default=60.0, gt=0)
    tap_topic_pattern: str = TAP_PATTERN
    # Topics whose records may name cases and actors, carry dead letters, or are outsiders' (opaque);
    # see audit.domain.capture.TopicTrust.
    case_topic_pattern: str = CASE_TOPICS
    dead_letter_topic_pattern: str = DEAD_LETTER_TOPICS
    opaque_topic_pattern: str = OPAQUE_TOPICS
    # Months of trail partitions created ahead of the current one.
    partitions_ahead: int = Field(default=2, ge=1)

    def trust(self) -> TopicTrust:
        return TopicTrust(self.case_topic_pattern, self.dead_letter_topic_pattern, self.opaque_topic_pattern)

    @model_validator(mode="after")
    def _key_present_outside_development(self) -> Settings:
        if self.environment != "development" and not (self.signing_key or self.signing_key_file):
            raise ValueError(
                "ONEGRID_AUDIT_SIGNING_KEY (or ONEGRID_AUDIT_SIGNING_KEY_FILE) must be set outside "
                "development: the audit log's tree heads are signed with it"
            )
        if self.signing_key:
            try:
                load_private_key(self.signing_key.encode())
            except (MalformedTreeHead, ValueError) as exc:
                raise ValueError(f"ONEGRID_AUDIT_SIGNING_KEY is not an Ed25519 private key: {exc}") from exc
        return self

    def private_key(self) -> Ed25519PrivateKey:
        """The signing key; in development, generated into ``.run/`` on first use."""
        if self.signing_key:
            return load_private_key(self.signing_key.encode())
        if self.signing_key_file is not None:
            try:
                return load_private_key(self.signing_key_file.read_bytes())
            except (OSError, ValueError) as exc:
                raise RuntimeError(f"ONEGRID_AUDIT_SIGNING_KEY_FILE {self.signing_key_file}: {exc}") from exc
        from onegrid.paths import run_dir

        path = run_dir() / "audit-signing-key.pem"
        if not path.exists():
            _create_once(path, Ed25519PrivateKey.generate())
        return load_private_key(path.read_bytes())


def _create_once(path: Path, key: Ed25519PrivateKey) -> None:
    """Write `key` to `path` unless another instance starting at the same moment got there first:
    the key is written to a file of this process's own and linked into place (atomic, and refused
    when the path exists), so every instance signs with the one key the file holds."""
    import os

    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    mine = path.with_name(f"{path.name}.{os.getpid()}")
    mine.touch(mode=0o600)
    mine.write_bytes(pem)
    try:
        os.link(mine, path)
    except FileExistsError:
        pass  # the other instance's key stands
    finally:
        mine.unlink()
