"""Operations console settings: the shared base plus where the other services answer, which topics
the console follows, and how much it keeps in memory (ONEGRID_CONSOLE_*)."""

from __future__ import annotations

import re

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import SettingsConfigDict

from onegrid.paths import run_dir
from onegrid.ratelimit import RateLimit
from onegrid.settings import ServiceSettings
from onegrid.topics import (
    CASE_LIFECYCLE,
    CASES,
    GRID_REGISTRY,
    INTAKE_DLQ,
    INTAKE_QUARANTINE,
    LEGACY_PATROL,
)


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ONEGRID_CONSOLE_", extra="ignore")

    service_name: str = "console"
    http_port: int = 8000
    # The console owns no tables; the name is reserved should it ever need one.
    db_schema: str = "console"
    # Base URLs of the services whose APIs the console reads (`make up` passes the real ones).
    registry_url: str = "http://127.0.0.1:8001"
    intake_url: str = "http://127.0.0.1:8002"
    dispatch_url: str = "http://127.0.0.1:8003"
    audit_url: str = "http://127.0.0.1:8004"
    evaluation_url: str = "http://127.0.0.1:8005"
    # Where `/open311/v2/` is forwarded (console.open311_forward); "" answers it 404 here.
    open311_url: str = "http://127.0.0.1:8006"
    # A POST waits for the broker's acknowledgement (the service's own limit is 10 s).
    open311_timeout_s: float = Field(default=15.0, gt=0)
    # Rankings hide units with fewer cases than this: small units are not judged on three cases.
    ranking_min_cases: int = 20
    upstream_timeout_s: float = Field(default=5.0, gt=0)
    # The grid workers' photos, content-addressed: a local directory (default: `photos` in the run
    # directory, .run/) or an fsspec URL of S3-compatible storage, e.g. s3://bucket/onegrid (s3fs).
    photos_url: str = Field(default_factory=lambda: str(run_dir() / "photos"))
    # A photo as the phone sends it, already downscaled (longest side 1280 px).
    photo_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, le=2 * 1024 * 1024)
    # How long the console waits for Kafka to take a patrol report before answering 503.
    publish_timeout_s: float = Field(default=10.0, gt=0)
    # Topics (overridable so tests run on unique names).
    dlq_topic: str = INTAKE_DLQ
    quarantine_topic: str = INTAKE_QUARANTINE
    lifecycle_topic: str = CASE_LIFECYCLE
    cases_topic: str = CASES
    registry_topic: str = GRID_REGISTRY
    # Where the grid workers' app writes patrol reports (the console owns this feed).
    patrol_topic: str = LEGACY_PATROL
    # Which topics' throughput and which groups' lag are shown (regular expressions, full match).
    throughput_topic_pattern: str = r"(?!__).+"
    lag_group_pattern: str = r".+"
    sample_interval_s: float = Field(default=2.0, gt=0)
    # Throughput is the growth of end offsets over this window.
    rate_window_s: float = Field(default=10.0, gt=0)
    # In memory: the latest set-aside records shown per kind, SLA alerts, spans received by OTLP.
    latest_set_aside: int = Field(default=50, ge=1)
    latest_alerts: int = Field(default=100, ge=1)
    max_spans: int = Field(default=100_000, ge=100)
    # Map: Douglas-Peucker tolerance in degrees (1e-4 deg is about 10 m at Yangzhou's latitude).
    map_tolerance_deg: float = Field(default=1e-4, ge=0)
    # Replays per client address: ONEGRID_CONSOLE_REPLAY_RATE='{"rate_per_s": 1, "burst": 10}'.
    replay_rate: RateLimit = Field(default_factory=lambda: RateLimit(rate_per_s=1.0, burst=10))

    def followed_topics(self) -> dict[str, str]:
        """The catalogue's name of each topic the console follows -> its name here."""
        return {
            INTAKE_DLQ: self.dlq_topic,
            INTAKE_QUARANTINE: self.quarantine_topic,
            CASE_LIFECYCLE: self.lifecycle_topic,
            CASES: self.cases_topic,
            GRID_REGISTRY: self.registry_topic,
        }

    @field_validator("throughput_topic_pattern", "lag_group_pattern")
    @classmethod
    def _is_regex(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return v

    @field_validator(
        "registry_url", "intake_url", "dispatch_url", "audit_url", "evaluation_url", "open311_url"
    )
    @classmethod
    def _http_url(cls, v: str, info: ValidationInfo) -> str:
        if info.field_name == "open311_url" and v == "":
            return v
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v.rstrip("/")
