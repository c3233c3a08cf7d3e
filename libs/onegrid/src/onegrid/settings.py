"""One settings base for every service: Kafka, database, telemetry, HTTP.

Each service subclasses `ServiceSettings` with its own prefix-free fields; values come from the
environment only (`ONEGRID_` prefix; the local stack sets it for each service it starts, and writes
`.run/endpoints.json` for tools and people, which no service reads). Validation fails at start with a
message that names the variable, never deep inside a handler.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from onegrid.auth.settings import AuthSettings

# The consumer loops' default spacing of waves under load (ServiceSettings.wave_interval_ms). Each wave
# is a Kafka transaction per partition (exactly once), ~3 ms of CPU in the service and as much in the
# broker whatever its size: `make bench`, intake and dispatch at 200 records/s, used 1.45 cores at
# 50 ms, 1.18 at 100 and 0.84 at 200; at 1,000/s the order's p99 was 1.8 s, 1.5 s and 1.1 s (less
# queueing on busy cores), for ~0.1 s more per hop at low rates.
WAVE_INTERVAL_MS = 200


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONEGRID_KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    client_id_prefix: str = "onegrid"
    # false: topics are declared outside the services (Strimzi KafkaTopic resources, deploy/k8s); the
    # services' Kafka users may not create or alter them, so `ensure_topics` leaves them alone.
    manage_topics: bool = True
    # Topics on a real cluster (ONEGRID_KAFKA_REPLICATION_FACTOR=3, ONEGRID_KAFKA_MIN_INSYNC_REPLICAS=2):
    # applied by `ensure_topics` to every topic whose spec does not fix them itself.
    replication_factor: int = Field(default=1, ge=1)
    min_insync_replicas: int = Field(default=1, ge=1)
    # Partition counts per topic name, overriding the catalogue ({"cases.v1": 12}, JSON).
    topic_partitions: dict[str, int] = Field(default_factory=dict)
    # Keyed or compacted topics whose partition count may grow: naming one here is the explicit
    # migration (keys move to other partitions; per-key order and co-partitioned state break).
    repartition: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _min_isr_within_replication(self) -> KafkaSettings:
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                "ONEGRID_KAFKA_MIN_INSYNC_REPLICAS must not exceed ONEGRID_KAFKA_REPLICATION_FACTOR"
            )
        return self

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL") and not (self.sasl_username and self.sasl_password):
            raise ValueError(
                "ONEGRID_KAFKA_SECURITY_PROTOCOL is SASL_* but ONEGRID_KAFKA_SASL_USERNAME/PASSWORD are not set"
            )
        return self

    def client_kwargs(self) -> dict[str, object]:
        """Keyword arguments shared by every aiokafka client we create."""
        kw: dict[str, object] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            kw.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password,
            )
        if self.security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            kw["ssl_context"] = create_ssl_context(cafile=self.ssl_cafile)
        return kw


class TelemetrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONEGRID_OTEL_", extra="ignore")

    # OTLP/HTTP endpoint of a real collector, e.g. http://127.0.0.1:4318; unset = no export.
    exporter_otlp_endpoint: str | None = None
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    log_level: str = "INFO"
    log_json: bool = True


class ServiceSettings(BaseSettings):
    """Base of every service's settings; build it once in `bootstrap()` and pass it down."""

    model_config = SettingsConfigDict(env_prefix="ONEGRID_", extra="ignore", populate_by_name=True)

    service_name: str = "onegrid"
    # Production unless told otherwise: secrets are then required and checked (make up and make run
    # start the local stack's services with ONEGRID_ENVIRONMENT=development).
    # One variable for every service (not ONEGRID_<SERVICE>_ENVIRONMENT).
    environment: Literal["development", "test", "production"] = Field(
        default="production", validation_alias="ONEGRID_ENVIRONMENT"
    )
    instance_id: str = "0"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/onegrid",
        validation_alias="DATABASE_URL",
    )
    # The schema this service owns; set by each service's settings class.
    db_schema: str = "public"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    # Who may call the HTTP API (ONEGRID_AUTH_*; see onegrid/auth/settings.py).
    auth: AuthSettings = Field(default_factory=AuthSettings)
    # Request bodies larger than this are refused with 413; endpoints that take more (the registry's
    # records and GeoJSON imports, the console's OTLP receiver) or less set their own per path.
    http_max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # Consumer loop tuning shared by every service.
    batch_max_records: int = Field(default=500, ge=1)
    batch_timeout_ms: int = Field(default=100, ge=1)
    commit_interval_s: float = Field(default=1.0, ge=0.0)
    # Under load a loop's next wave (a transaction per partition, exactly once) begins at most this
    # long after the last: what arrives meanwhile goes in it (onegrid.kafka.loop, `_gather`).
    wave_interval_ms: int = Field(default=WAVE_INTERVAL_MS, ge=0)
    dlq_max_ratio: float = Field(default=0.5, gt=0.0, le=1.0)
    dlq_max_consecutive: int = Field(default=1000, ge=1)
    # A member that has not polled for this long leaves its group and its partitions move on; its
    # late work is then fenced (exactly once) or its commits refused (at least once).
    max_poll_interval_ms: int = Field(default=300_000, ge=1000)
    # A service with an outbox (onegrid.outbox): how long the relaying instance's database session
    # may stay idle before the server ends it and another instance relays (an instance stopped
    # without dying holds the table no longer than this).
    outbox_lease_s: float = Field(default=20.0, gt=1.0)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, v: str) -> str:
        # Accept the libpq form people paste (postgresql://...) and use asyncpg underneath.
        if v.startswith("postgres://"):
            v = "postgresql://" + v[len("postgres://") :]
        if v.startswith("postgresql://"):
            v = "postgresql+asyncpg://" + v[len("postgresql://") :]
        if not v.startswith("postgresql+asyncpg://"):
            raise ValueError("DATABASE_URL must be a PostgreSQL URL (postgresql://user@host:port/db)")
        return v

    @model_validator(mode="after")
    def _auth_configured(self) -> ServiceSettings:
        # Outside development a missing or default secret stops the service here, at start.
        self.auth.check(self.environment)
        return self

    @property
    def client_id(self) -> str:
        return f"{self.kafka.client_id_prefix}-{self.service_name}-{self.instance_id}"
