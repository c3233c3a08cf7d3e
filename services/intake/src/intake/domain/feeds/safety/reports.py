"""The safety (综治/平安) feed: the bytes of one record to the Report it carries (`Rejected` from the parser)."""

from __future__ import annotations

from intake.domain.coords import CoordSystem
from intake.domain.feeds.safety.record import parse_safety
from intake.domain.localtime import LOCAL_ZONE, LocalTime
from intake.domain.report import Intent, Report, ReporterInfo, SourcePosition
from intake.domain.severity import from_china_level

SAFETY_PARSER = "safety-v1/1"


def reports_from_safety(raw: bytes) -> list[Report]:
    r = parse_safety(raw)
    pos = r.position
    return [
        Report(
            network="safety",
            source_id=r.source_id,
            intent=Intent.AMEND if r.related_id else Intent.REPORT,
            refers_to=(r.related_id,) if r.related_id else (),
            source_code=r.event_type_code,
            title=r.title,
            description=r.description,
            reported=LocalTime(utc=r.reported_at, text=r.reported_text, zone=LOCAL_ZONE),
            occurred=LocalTime(utc=r.occurred_at, text=r.occurred_text, zone=LOCAL_ZONE),
            parser_version=SAFETY_PARSER,
            severity=from_china_level(r.level),
            severity_source=r.level,
            position=SourcePosition(pos.lat, pos.lon, CoordSystem.GCJ02) if pos else None,
            address=r.address,
            grid_code=r.grid_code,
            reporter=ReporterInfo(
                name=r.reporter.name, phone=r.reporter.phone, id_number=r.reporter.id_number
            ),
            attributes={"handling_status": r.handling_status, "source_encoding": r.declared_encoding},
        )
    ]
