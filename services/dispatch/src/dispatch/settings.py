"""Dispatch settings: the shared base plus this service's own knobs (ONEGRID_DISPATCH_*)."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import SettingsConfigDict

from onegrid.settings import ServiceSettings
from onegrid.topics import (
    CASE_LIFECYCLE,
    CASES,
    DISPATCH_DLQ,
    DISPATCH_FEEDBACK,
    GRID_REGISTRY,
    ORDERS_TOPIC_TEMPLATE,
)


class WebhookTarget(BaseModel):
    url: str
    secret: str = Field(min_length=16)


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ONEGRID_DISPATCH_", extra="ignore")

    service_name: str = "dispatch"
    http_port: int = 8003
    db_schema: str = "dispatch"
    # Topics (overridable so tests run on unique names).
    cases_topic: str = CASES
    feedback_topic: str = DISPATCH_FEEDBACK
    lifecycle_topic: str = CASE_LIFECYCLE
    registry_topic: str = GRID_REGISTRY
    orders_topic: str = ORDERS_TOPIC_TEMPLATE
    dlq_topic: str = DISPATCH_DLQ
    # Departments without Kafka: {"dept-code": {"url": "...", "secret": "..."}} (JSON in the env var).
    webhooks: dict[str, WebhookTarget] = Field(default_factory=dict)
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    webhook_max_backoff_s: float = Field(default=300.0, gt=0)
    webhook_stuck_after: int = Field(default=5, ge=1)
    # The closed loop's policy.
    reopen_window_days: float = Field(default=7.0, ge=0)
    arbitration_s: int = Field(default=4 * 3600, ge=1)
    command_centre_suffix: str = "-command"
    deadline_poll_s: float = Field(default=0.5, gt=0)
    # Concurrent units of work a large consumer batch is split into, by case (Desk.lanes): one unit's
    # statements run in PostgreSQL while the next is decided. Each holds a pooled connection.
    desk_lanes: int = Field(default=2, ge=1, le=8)
    # How often the gauges (cases by state, stuck webhook deliveries) are counted in the database.
    gauges_interval_s: float = Field(default=15.0, gt=0)

    def topics(self) -> dict[str, str]:
        """The catalogue's name of each topic dispatch reads or writes -> its name here."""
        return {
            CASES: self.cases_topic,
            DISPATCH_FEEDBACK: self.feedback_topic,
            CASE_LIFECYCLE: self.lifecycle_topic,
            GRID_REGISTRY: self.registry_topic,
            DISPATCH_DLQ: self.dlq_topic,
        }

    @field_validator("orders_topic")
    @classmethod
    def _has_department(cls, v: str) -> str:
        if "{department}" not in v:
            raise ValueError("ONEGRID_DISPATCH_ORDERS_TOPIC must contain {department}")
        return v
