"""Bridges settings: the shared base plus this service's own knobs (ONEGRID_BRIDGES_*)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field, HttpUrl
from pydantic_settings import SettingsConfigDict

from onegrid.settings import ServiceSettings
from onegrid.topics import LEGACY_EMERGENCY_CAP, LEGACY_ENV_HJ212, LEGACY_PARTY, LEGACY_SAFETY


class CapFeed(BaseModel):
    """One CAP index feed (Atom or RSS) to poll."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    url: HttpUrl
    interval_s: float = Field(default=30.0, gt=0)


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ONEGRID_BRIDGES_", extra="ignore")

    service_name: str = "bridges"
    http_port: int = 8007
    db_schema: str = "bridges"
    # Topics (overridable so tests run on unique names).
    hj212_topic: str = LEGACY_ENV_HJ212
    cap_topic: str = LEGACY_EMERGENCY_CAP
    safety_topic: str = LEGACY_SAFETY
    party_topic: str = LEGACY_PARTY

    def topics(self) -> dict[str, str]:
        """The catalogue's name of each feed the bridges write -> its name here."""
        return {
            LEGACY_ENV_HJ212: self.hj212_topic,
            LEGACY_EMERGENCY_CAP: self.cap_topic,
            LEGACY_SAFETY: self.safety_topic,
            LEGACY_PARTY: self.party_topic,
        }

    # -- HJ 212 over TCP ---------------------------------------------------------------------------
    # The TCP listener's address; unset: the HTTP API's (ONEGRID_BRIDGES_HTTP_HOST), so a deployment
    # that opens the API to the network opens the listener too.
    hj212_host: str | None = None
    hj212_port: int = Field(default=8212, ge=0, le=65535)  # 0: any free port (tests)
    hj212_max_connections: int = Field(default=5000, ge=1)
    # Per remote address: one site's loggers share an address; a runaway one cannot take them all.
    hj212_max_connections_per_address: int = Field(default=64, ge=1)
    # A connection that sends nothing for this long is closed (loggers send at least every minute).
    hj212_idle_timeout_s: float = Field(default=600.0, gt=0)
    # Slow-loris: once a packet has begun it must be complete within this.
    hj212_packet_timeout_s: float = Field(default=30.0, gt=0)
    # A packet whose CRLF never comes (gateways that strip it) is taken after this much quiet.
    hj212_crlf_grace_s: float = Field(default=1.0, gt=0)
    hj212_max_packet_bytes: int = Field(default=16384, ge=64)
    # Longest wait for Kafka's acknowledgement; without it no reply is sent and the connection closes.
    hj212_ack_timeout_s: float = Field(default=30.0, gt=0)
    # Per-MN password check: a JSON file {"<MN>": "<PW>"}; stations not listed are not checked.
    hj212_passwords_file: Path | None = None
    # Packets already acknowledged, remembered per instance, so a resend after a lost reply is
    # answered again without a second record.
    hj212_resend_memory: int = Field(default=100_000, ge=0)

    # -- CAP -----------------------------------------------------------------------------------------
    cap_feeds: list[CapFeed] = Field(default_factory=list)
    cap_max_bytes: int = Field(default=1024 * 1024, ge=1024)
    cap_timeout_s: float = Field(default=10.0, gt=0)
    cap_max_backoff_s: float = Field(default=300.0, gt=0)
    cap_remember_entries: int = Field(default=100_000, ge=100)

    # -- HTTP pushes (CAP, public safety, party building) -------------------------------------------
    push_max_bytes: int = Field(default=1024 * 1024, ge=1024)
    push_ack_timeout_s: float = Field(default=30.0, gt=0)

    def hj212_passwords(self) -> dict[str, str]:
        if self.hj212_passwords_file is None:
            return {}
        data = json.loads(self.hj212_passwords_file.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError("ONEGRID_BRIDGES_HJ212_PASSWORDS_FILE must hold a JSON object {MN: PW}")
        return {str(k): v for k, v in data.items()}
