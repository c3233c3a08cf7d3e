"""Unified intake (统一受理) settings: the shared base plus this service's own knobs."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from onegrid.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ONEGRID_INTAKE_", extra="ignore")

    service_name: str = "intake"
    http_port: int = 8002
    # Cross-network correlation per category family, overriding the defaults in
    # intake.domain.correlation.DEFAULT_WINDOWS ("*" is every other family), e.g.
    # ONEGRID_INTAKE_CORRELATION_WINDOWS='{"fire": {"radius_m": 1500, "within_s": 7200}}'.
    correlation_windows: dict[str, dict[str, float]] = Field(default_factory=dict)
    # How often stations are checked for silence (HJ 212 packets overdue); seconds.
    silence_check_s: float = 60.0
    # How often a legacy partition read to its end sends its watermark to the correlation stage
    # anyway (a heartbeat); seconds.
    watermark_interval_s: float = Field(default=1.0, gt=0)
    # How soon a partition read to its end answers a record the correlation stage holds waiting for
    # its watermark (seen in the stage's changelog); seconds. A report of a quiet city is decided
    # about this long after the stage took it in, not a heartbeat later.
    watermark_wait_s: float = Field(default=0.1, gt=0)
    # A CAP alert's area is computed in a worker process; past this limit the worker is killed and
    # the alert dead-lettered (`cap.geometry_timeout`); seconds.
    cap_geometry_limit_s: float = Field(default=5.0, gt=0)
    # The taken-in horizon: how long a source key stays known (a re-send is recognised, an amendment
    # or cancel finds its case), and how far back `cases.v1` is read at start; seconds. HJ 212 loggers
    # resend unanswered packets and back-fill after an outage (days), CAP updates and cancels refer
    # to alerts of incidents that last days to a couple of weeks (a flood), and 12345 requests are
    # followed up within days: 30 days covers the longest of these with margin.
    taken_in_horizon_s: float = Field(default=30 * 86400.0, gt=0)

    @property
    def legacy_tick_s(self) -> float:
        """The legacy loop's tick: idle watermarks (heartbeat, and answers to held records) and the
        silence check each keep their own interval on top of it."""
        return min(self.silence_check_s, self.watermark_interval_s, self.watermark_wait_s)
