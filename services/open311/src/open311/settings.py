"""Open311 (residents' requests) settings: the shared base plus this service's own knobs
(`ONEGRID_OPEN311_*`). The GeoReport v2 endpoint's own knobs are `open311.api.ApiSettings`, under the
same prefix."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from onegrid.settings import ServiceSettings
from onegrid.topics import CASE_LIFECYCLE, CASES, OPEN311_DLQ


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ONEGRID_OPEN311_", extra="ignore")

    service_name: str = "open311"
    http_port: int = 8006
    db_schema: str = "open311"
    # What the status follows (overridable so tests run on unique names): the case each request
    # went to (cases.v1: its own, or the one intake linked it into) and that case's lifecycle.
    cases_topic: str = CASES
    lifecycle_topic: str = CASE_LIFECYCLE
    dlq_topic: str = OPEN311_DLQ
