"""Grid registry settings: the shared base plus this service's own knobs."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from onegrid.settings import ServiceSettings
from onegrid.topics import GRID_REGISTRY, ORDERS_TOPIC_TEMPLATE


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ONEGRID_GRID_REGISTRY_", extra="ignore")

    service_name: str = "grid-registry"
    http_port: int = 8001
    db_schema: str = "registry"
    # The changelog topic; tests point it at a topic of their own.
    changelog_topic: str = GRID_REGISTRY
    # Seed an empty registry at start (make up); the seed of the generated grid geometry.
    seed_on_start: bool = True
    geometry_seed: int = Field(default=321003)
    # Every registered department gets this topic at once (tests point it at names of their own).
    orders_topic: str = ORDERS_TOPIC_TEMPLATE
