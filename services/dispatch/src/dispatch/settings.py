"""Dispatch settings: the shared base plus this service's own knobs."""

from __future__ import annotations

from onegrid.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ONEGRID_DISPATCH_", extra="ignore")

    service_name: str = "dispatch"
    http_port: int = 8003
    db_schema: str = "dispatch"
