"""The party-building (民情日记) feed: the bytes of one record to the Report it carries (`Rejected` from the parser)."""

from __future__ import annotations

from intake.domain.coords import CoordSystem
from intake.domain.feeds.party.record import parse_party
from intake.domain.localtime import LOCAL_ZONE, LocalTime
from intake.domain.report import Intent, Report, ReporterInfo, SourcePosition
from intake.domain.severity import Severity

PARTY_PARSER = "party-v1/1"


def reports_from_party(raw: bytes) -> list[Report]:
    r = parse_party(raw)
    pos = r.position
    return [
        Report(
            network="party",
            source_id=r.source_id,
            intent=Intent.REPORT,
            source_code=r.event_type_code,
            title=r.title,
            description=r.content,
            reported=LocalTime(utc=r.reported_at, text=r.reported_text, zone=LOCAL_ZONE),
            occurred=LocalTime(utc=r.occurred_at, text=r.occurred_text or "", zone=LOCAL_ZONE)
            if r.occurred_at
            else None,
            parser_version=PARTY_PARSER,
            severity=Severity.IV,
            position=SourcePosition(pos.lat, pos.lon, CoordSystem.BD09) if pos else None,
            address=r.address,
            grid_code=r.grid_code,
            reporter=ReporterInfo(name=r.reporter.name, phone=r.reporter.phone),
            attributes={"reporter_role": r.reporter_role, "photo_urls": list(r.photo_urls)},
        )
    ]
