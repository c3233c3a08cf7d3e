"""From a Report, its category, place and correlation decision to the CaseEvent on `cases.v1`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from intake.domain.correlation import Decision
from intake.domain.crosswalk import Category
from intake.domain.identity import event_id_for
from intake.domain.placement import Placement
from intake.domain.report import Report
from onegrid_contracts import case_event as ce


class Provenance(msgspec.Struct, frozen=True):
    topic: str | None
    partition: int | None
    offset: int | None
    received_at: datetime


def _area(shape: BaseGeometry | None) -> ce.Area | None:
    if shape is None or shape.is_empty or shape.geom_type not in ("Polygon", "MultiPolygon"):
        return None
    if isinstance(shape, Polygon):
        return ce.Polygon(coordinates=_rings(shape))
    return ce.MultiPolygon(coordinates=tuple(_rings(poly) for poly in shape.geoms))


def _rings(poly: Polygon) -> tuple[tuple[tuple[float, float], ...], ...]:
    """A polygon's rings as GeoJSON positions (lon, lat), exterior first: read from the coordinate
    arrays (shapely's `mapping` builds a GeoJSON dict of tuples first: ~40 µs for a 65-point ring)."""
    return tuple(
        tuple(map(tuple, shapely.get_coordinates(ring).tolist())) for ring in (poly.exterior, *poly.interiors)
    )


def _jsonable(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if isinstance(v, datetime):
            out[k] = v.isoformat()
        elif isinstance(v, tuple):
            out[k] = list(v)
        else:
            out[k] = v
    return out


def to_case_event(
    report: Report,
    *,
    category: Category,
    taxonomy_version: str,
    crosswalk_version: str,
    placement: Placement,
    point: tuple[float, float] | None,
    decision: Decision,
    provenance: Provenance,
    geography_version: str,
) -> ce.CaseEvent:
    """`point` is the report's position converted to WGS-84 (lat, lon), if it has one."""
    assert decision.event_type is not None and decision.case_id is not None
    source = ce.SourceRef(
        network=report.network,  # type: ignore[arg-type]
        source_id=report.source_id,
        topic=provenance.topic,
        partition=provenance.partition,
        offset=provenance.offset,
        parser_version=report.parser_version,
        crosswalk_version=crosswalk_version,
    )
    merge = None
    if decision.merged_into is not None:
        merge = ce.Merge(
            reason=decision.reason or "correlation.nearby_same_family",
            matched_case_id=decision.merged_into,
            distance_m=decision.distance_m,
            time_delta_s=decision.time_delta_s,
        )
    orig = report.position
    attributes = _jsonable(report.attributes)
    attributes["geography_version"] = geography_version
    if not placement.located:
        attributes["placement"] = "unlocated"
    return ce.CaseEvent(
        # Every report has its own source key, so (source, event type) names the event uniquely.
        event_id=event_id_for(report.network, report.source_id, decision.event_type),
        event_type=decision.event_type,  # type: ignore[arg-type]
        case_id=decision.case_id,
        source=source,
        linked_sources=(),
        merge=merge,
        times=ce.CaseTimes(
            occurred_at=report.occurred.utc if report.occurred else None,
            reported_at=report.reported.utc,
            received_at=provenance.received_at,
            occurred_text=report.occurred.text if report.occurred else None,
            reported_text=report.reported.text,
            source_zone=report.reported.zone,
        ),
        category=ce.Category(
            code=category.code,
            family=category.family,
            taxonomy_version=taxonomy_version,
            source_code=report.source_code,
        ),
        severity=ce.Severity(level=int(report.severity), source_value=report.severity_source),
        location=ce.Location(
            point=ce.Point(lat=point[0], lon=point[1]) if point else None,
            area=_area(report.area),
            original=ce.OriginalPosition(
                system=orig.system.name if orig else "none",  # type: ignore[arg-type]
                lat=orig.lat if orig else None,
                lon=orig.lon if orig else None,
            ),
            address=report.address,
            inside_city=placement.inside_city,
        ),
        division=ce.Division(
            district=placement.district,
            street=placement.street,
            community=placement.community,
            grid=placement.grid,
            micro_grid=placement.micro_grid,
            tier=placement.tier,  # type: ignore[arg-type]
        ),
        title=(report.title or category.zh)[:200],
        description=report.description,
        reporter=ce.Reporter(
            name=report.reporter.name,
            phone=report.reporter.phone,
            id_number=report.reporter.id_number,
            org=report.reporter.org,
        ),
        attributes=attributes,
    )
