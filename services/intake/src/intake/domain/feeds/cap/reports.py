"""The CAP feed: the bytes of one alert to the Report it carries.

`reports_from_cap` raises `Rejected` (malformed) from the parser. CAP messages that are not about real
incidents (Test, Exercise, Draft, System status; Ack and Error types) give a report marked
``no_case`` ("status Test", "msgType Ack"): intake places it like any other, so what it says about
its place is true, and then makes no case of it; the audit trail keeps the record.
"""

from __future__ import annotations

from dataclasses import dataclass

from shapely.geometry.base import BaseGeometry

from intake.domain.errors import IntakeError
from intake.domain.feeds.cap import alert as cap_mod
from intake.domain.localtime import LocalTime
from intake.domain.report import Intent, Report, ReporterInfo
from intake.domain.severity import Severity, from_cap

CAP_PARSER = "cap-1.2/1"

_CAP_INTENT = {
    cap_mod.CapMsgType.ALERT: Intent.REPORT,
    cap_mod.CapMsgType.UPDATE: Intent.AMEND,
    cap_mod.CapMsgType.CANCEL: Intent.CANCEL,
}


def cap_source_id(sender: str, identifier: str) -> str:
    return f"{sender},{identifier}"


@dataclass(frozen=True, slots=True)
class PreparedArea:
    """A CAP alert's geometry computed ahead (off the event loop, with a time limit): the shape, or
    the error that stands for it (e.g. `cap.geometry_timeout`)."""

    geometry: BaseGeometry | None = None
    error: IntakeError | None = None
    # The alert as parsed where its area was prepared (so it is not parsed again), when it was.
    alert: cap_mod.CapAlert | None = None


def reports_from_cap(raw: bytes, prepared: PreparedArea | None = None) -> list[Report]:
    """The alert's report; its area is `prepared` when given, else computed here."""
    alert = (
        prepared.alert if prepared is not None and prepared.alert is not None else cap_mod.parse_alert(raw)
    )
    if prepared is not None and prepared.error is not None:
        raise prepared.error
    intent = _CAP_INTENT.get(alert.msg_type)
    no_case = None
    if alert.status is not cap_mod.CapStatus.ACTUAL:
        no_case = f"status {alert.status.value}"
    elif intent is None:
        no_case = f"msgType {alert.msg_type.value}"
    info = alert.most_severe_info()
    offset = alert.sent_text[-6:] if alert.sent_text[-6] in "+-" else "UTC"
    sent = LocalTime(utc=alert.sent, text=alert.sent_text, zone=offset)
    geocodes = [g.value for i in alert.infos for a in i.areas for g in a.geocodes]
    occurred = None
    if info is not None and info.onset is not None:
        occurred = LocalTime(utc=info.onset, text=info.onset_text or "", zone=offset)
    return [
        Report(
            network="emergency",
            source_id=cap_source_id(alert.sender, alert.identifier),
            intent=intent or Intent.REPORT,
            no_case=no_case,
            source_code=info.categories[0] if info else "Other",
            hints={"event": info.event} if info else {},
            title=(info.headline or info.event) if info else alert.identifier,
            description=(info.description or "") if info else (alert.note or ""),
            reported=sent,
            occurred=occurred,
            parser_version=CAP_PARSER,
            severity=from_cap(info.severity.value, info.urgency.value) if info else Severity.IV,
            severity_source=f"{info.severity.value}/{info.urgency.value}" if info else None,
            refers_to=tuple(cap_source_id(r.sender, r.identifier) for r in alert.references),
            area=alert.geometry() if prepared is None else prepared.geometry,
            address="; ".join(a.area_desc for i in alert.infos for a in i.areas) or None,
            division_code=next((g for g in geocodes if g.isdigit() and len(g) in (6, 9, 12)), None),
            reporter=ReporterInfo(org=(info.sender_name if info else None) or alert.sender),
            must_locate=True,
            attributes={
                "cap_identifier": alert.identifier,
                "cap_sender": alert.sender,
                "cap_msg_type": alert.msg_type.value,
                "cap_events": [i.event for i in alert.infos],
                "cap_geocodes": geocodes,
                "cap_expires": info.expires.isoformat() if info and info.expires else None,
            },
        )
    ]
