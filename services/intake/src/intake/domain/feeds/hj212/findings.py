"""Findings of the environmental rules: what a case is opened, updated or closed from."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from onegrid.ids import uuid5

FindingKind = Literal["exceedance", "fault", "silence"]
FindingStatus = Literal["opened", "updated", "closed"]

_EPISODE_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:onegrid:intake:hj212:episode")


def episode_id(mn: str, pollutant: str | None, kind: FindingKind, anchor: str) -> str:
    """Deterministic episode id: the same station, pollutant, kind and first packet (its QN, else its
    DataTime) give the same id, so replaying the feed reproduces the ids."""
    return str(uuid5(_EPISODE_NAMESPACE, f"{mn}|{pollutant or '-'}|{kind}|{anchor}"))


@dataclass(frozen=True, slots=True)
class EnvFinding:
    """One change of an episode. One episode maps to one case: "opened" creates it, "updated"
    reports a markedly higher peak, "closed" ends it; all share ``episode_id``.

    ``value`` is the reading of the packet behind this finding (None for silence); ``peak`` the
    episode's worst reading so far; ``observed_at`` the packet's DataTime in UTC (its receipt time
    when it has none; for an opened silence, the time the check ran); ``qn`` the packet's QN (for
    silence, the last packet before it).
    """

    kind: FindingKind
    status: FindingStatus
    mn: str
    st: str
    pollutant: str | None
    value: float | None
    limit: float | None
    unit: str | None
    data_flag: str | None
    observed_at: datetime
    episode_id: str
    qn: str | None
    peak: float | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form; ``observed_at`` as ISO 8601 with offset."""
        return {
            "kind": self.kind,
            "status": self.status,
            "mn": self.mn,
            "st": self.st,
            "pollutant": self.pollutant,
            "value": self.value,
            "limit": self.limit,
            "unit": self.unit,
            "data_flag": self.data_flag,
            "observed_at": self.observed_at.isoformat(),
            "episode_id": self.episode_id,
            "qn": self.qn,
            "peak": self.peak,
        }
