"""The patrol feed (`legacy.patrol.v1`): grid workers' reports from the phone app into Reports.

The worker picks the category from the taxonomy itself, so the crosswalk maps the code to itself
(network `patrol`); the place is the phone's WGS-84 point, checked against the worker's grid by the
usual placement. Photo hashes travel as attributes, so they are in the case event and the audit trail.
"""

from __future__ import annotations

from intake.domain.coords import CoordSystem
from intake.domain.feeds.patrol.record import PatrolRecord, parse_patrol, utc
from intake.domain.localtime import LocalTime
from intake.domain.report import Intent, Report, ReporterInfo, SourcePosition
from intake.domain.severity import Severity

PATROL_PARSER = "patrol-v1/1"


def reports_from_patrol(raw: bytes) -> list[Report]:
    r = parse_patrol(raw)
    return [
        Report(
            network="patrol",
            source_id=r.report_id,
            intent=Intent.REPORT,
            source_code=r.category,
            title=_title(r),
            description=r.description.strip(),
            reported=LocalTime(utc=utc(r.reported_at), text=r.reported_at.isoformat(), zone=_zone(r)),
            parser_version=PATROL_PARSER,
            severity=Severity[r.severity],
            severity_source=r.severity,
            position=SourcePosition(r.location.lat, r.location.lon, CoordSystem.WGS84),
            grid_code=r.grid_code,
            reporter=ReporterInfo(org="网格员"),
            attributes={
                "worker_id": r.worker.id,
                "worker_display": r.worker.display,
                "location_source": r.location.source,
                "accuracy_m": r.location.accuracy_m,
                "photos": [{"sha256": p.sha256, "ref": p.ref, "media_type": p.media_type} for p in r.photos],
                "received_at": utc(r.received_at).isoformat().replace("+00:00", "Z"),
            },
        )
    ]


def _title(r: PatrolRecord) -> str:
    first = r.description.strip().splitlines()[0]
    return first if len(first) <= 40 else first[:39] + "…"


def _zone(r: PatrolRecord) -> str:
    offset = r.reported_at.utcoffset()
    if not offset:
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
