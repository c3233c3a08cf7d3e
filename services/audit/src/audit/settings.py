"""Audit settings: the shared base plus this service's own knobs."""

from __future__ import annotations

from onegrid.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ONEGRID_AUDIT_", extra="ignore")

    service_name: str = "audit"
    http_port: int = 8004
    db_schema: str = "audit"
