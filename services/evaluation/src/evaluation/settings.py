"""Evaluation settings: the shared base plus this service's own knobs (ONEGRID_EVALUATION_*)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from evaluation.domain.case_facts import Policy
from onegrid.paths import run_dir
from onegrid.settings import ServiceSettings
from onegrid.topics import CASE_LIFECYCLE, EVALUATION_DLQ, GRID_REGISTRY


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ONEGRID_EVALUATION_", extra="ignore")

    service_name: str = "evaluation"
    http_port: int = 8005
    db_schema: str = "evaluation"
    # Topics (overridable so tests run on unique names).
    lifecycle_topic: str = CASE_LIFECYCLE
    dlq_topic: str = EVALUATION_DLQ
    registry_topic: str = GRID_REGISTRY
    # The lake (Parquet by day): a local directory (default: `lake` in the run directory, .run/), or an fsspec URL such as s3://bucket/prefix
    # (credentials from the usual AWS_* variables; install onegrid-evaluation[s3]); "" turns it off.
    lake_url: str = Field(default_factory=lambda: str(run_dir() / "lake"))
    # The evaluation rules: a reopen within this window makes a closure count as not on time; a
    # verification later than this after the case was resolved is not timely.
    reopen_window_days: float = Field(default=7.0, ge=0)
    verification_limit_hours: float = Field(default=24.0, gt=0)
    # Rankings: the default minimum sample a unit needs to be ranked at all.
    ranking_min_cases: int = Field(default=20, ge=1)

    def topics(self) -> dict[str, str]:
        """The catalogue's name of each topic evaluation reads or writes -> its name here."""
        return {
            CASE_LIFECYCLE: self.lifecycle_topic,
            EVALUATION_DLQ: self.dlq_topic,
            GRID_REGISTRY: self.registry_topic,
        }

    def policy(self) -> Policy:
        return Policy(
            reopen_window_s=self.reopen_window_days * 86400,
            verification_limit_s=self.verification_limit_hours * 3600,
        )
