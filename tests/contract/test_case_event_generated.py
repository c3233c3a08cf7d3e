"""Structs built in code, by hand and by hypothesis, encode to JSON that case-event.v1.json accepts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from onegrid_contracts import case_event as ce
from onegrid_contracts.case_event import CaseEvent, decode_case_event, encode_case_event


@pytest.fixture(scope="module")
def validator(validator_for: Callable[[str], Draft202012Validator]) -> Draft202012Validator:
    return validator_for("case-event.v1.json")


def sample_event() -> CaseEvent:
    """A hand-built event, as intake would build it from a public-safety report (GCJ-02 input)."""
    at = datetime(2026, 3, 1, 1, 5, tzinfo=UTC)
    return CaseEvent(
        event_id=uuid.UUID("6f1d0c2e-9b8a-4e7d-a6c5-b4a392817060"),
        event_type="case.reported",
        case_id=uuid.UUID("1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
        source=ce.SourceRef(
            network="safety",
            source_id="ZZ3210032026030100017",
            topic="legacy.safety.v1",
            partition=2,
            offset=5531,
            parser_version="safety-1.0.0",
            crosswalk_version="2026.1",
        ),
        linked_sources=(),
        merge=None,
        times=ce.CaseTimes(
            occurred_at=None,
            reported_at=at,
            received_at=at + timedelta(seconds=2),
            occurred_text=None,
            reported_text="2026-03-01 09:05:00",
            source_zone="Asia/Shanghai",
        ),
        category=ce.Category(
            code="safety.dispute", family="dispute", taxonomy_version="2026.1", source_code="矛盾纠纷"
        ),
        severity=ce.Severity(level=4, source_value="一般"),
        location=ce.Location(
            point=ce.Point(lat=32.3942, lon=119.4129),
            area=None,
            original=ce.OriginalPosition(system="GCJ02", lat=32.3923204, lon=119.4183802),
            address="新盛街道某小区12幢",
            inside_city=True,
        ),
        division=ce.Division(
            district="321003",
            street="321003009",
            community="321003009001",
            grid="321003009001003",
            micro_grid=None,
            tier="community",
        ),
        title="邻里噪声纠纷",
        description="楼上住户夜间装修噪声，邻里多次协商未果。",
        reporter=ce.Reporter(name="张三", phone="13912345678", id_number=None, org=None),
        attributes={"sjbh": "ZZ3210032026030100017"},
    )


_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
_nonempty = _text.filter(bool)
_utc = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
_lat = st.floats(-90, 90, allow_nan=False)
_lon = st.floats(-180, 180, allow_nan=False)
_digits = lambda n: st.text("0123456789", min_size=n, max_size=n)  # noqa: E731
_count = st.integers(0, 2**62)
_source = st.builds(
    ce.SourceRef,
    network=st.sampled_from(["env", "emergency", "safety", "party", "open311"]),
    source_id=_nonempty,
    topic=st.none() | _nonempty,
    partition=st.none() | _count,
    offset=st.none() | _count,
    parser_version=_nonempty,
    crosswalk_version=st.none() | _nonempty,
)
_position = st.tuples(_lon, _lat)
_ring = st.lists(_position, min_size=3, max_size=6).map(lambda ps: (*ps, ps[0]))
_polygon = st.builds(ce.Polygon, coordinates=st.lists(_ring, min_size=1, max_size=2).map(tuple))
_multi = st.builds(
    ce.MultiPolygon,
    coordinates=st.lists(st.lists(_ring, min_size=1, max_size=2).map(tuple), min_size=1, max_size=2).map(
        tuple
    ),
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)


def case_events() -> st.SearchStrategy[CaseEvent]:
    return st.builds(
        CaseEvent,
        event_id=st.uuids(),
        event_type=st.sampled_from(list(ce.CE_TYPES)),
        case_id=st.uuids(),
        source=_source,
        linked_sources=st.lists(_source, max_size=2).map(tuple),
        merge=st.none()
        | st.builds(
            ce.Merge,
            reason=st.from_regex(r"\A[a-z0-9_]{1,10}(\.[a-z0-9_]{1,10}){0,3}\Z"),
            matched_case_id=st.uuids(),
            distance_m=st.none() | st.floats(0, 1e6),
            time_delta_s=st.none() | st.floats(0, 1e8),
        ),
        times=st.builds(
            ce.CaseTimes,
            occurred_at=st.none() | _utc,
            reported_at=_utc,
            received_at=_utc,
            occurred_text=st.none() | _text,
            reported_text=st.none() | _text,
            source_zone=st.none() | _nonempty,
        ),
        category=st.builds(
            ce.Category,
            code=_nonempty,
            family=_nonempty,
            taxonomy_version=_nonempty,
            source_code=st.none() | _text,
        ),
        severity=st.builds(ce.Severity, level=st.integers(1, 4), source_value=st.none() | _text),
        location=st.builds(
            ce.Location,
            point=st.none() | st.builds(ce.Point, lat=_lat, lon=_lon),
            area=st.none() | _polygon | _multi,
            original=st.builds(
                ce.OriginalPosition,
                system=st.sampled_from(["WGS84", "GCJ02", "BD09", "CGCS2000", "none"]),
                lat=st.none() | _lat,
                lon=st.none() | _lon,
            ),
            address=st.none() | _text,
            inside_city=st.booleans(),
        ),
        division=st.builds(
            ce.Division,
            district=st.none() | _digits(6),
            street=st.none() | _digits(9),
            community=st.none() | _digits(12),
            grid=st.none() | _digits(15),
            micro_grid=st.none() | _digits(18),
            tier=st.sampled_from(["grid", "community", "street", "district", "city"]),
        ),
        title=_nonempty.map(lambda s: s[:200]),
        description=_text,
        reporter=st.builds(
            ce.Reporter,
            name=st.none() | _text,
            phone=st.none() | _text,
            id_number=st.none() | _text,
            org=st.none() | _text,
        ),
        attributes=st.dictionaries(_text, _json, max_size=3),
    )


def _errors(validator: Draft202012Validator, instance: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(instance)]


def test_sample_struct_encodes_to_a_valid_event(validator: Draft202012Validator) -> None:
    data = json.loads(encode_case_event(sample_event()))
    assert _errors(validator, data) == []
    assert data["merge"] is None and data["reporter"]["id_number"] is None, "nulls are encoded, not omitted"


@settings(max_examples=60, deadline=None)
@given(case_events())
def test_generated_structs_encode_to_valid_events(validator: Draft202012Validator, event: CaseEvent) -> None:
    data = encode_case_event(event)
    assert _errors(validator, json.loads(data)) == []
    assert decode_case_event(data) == event


def test_times_must_be_utc_when_built_in_code() -> None:
    times = sample_event().times
    shanghai = timezone(timedelta(hours=8))
    with pytest.raises(ValueError, match="reported_at must be in UTC"):
        msgspec.structs.replace(times, reported_at=datetime(2026, 3, 1, 10, 15, tzinfo=shanghai))
    assert msgspec.structs.replace(times, reported_at=datetime(2026, 3, 1, 2, 15, tzinfo=UTC))


def test_encode_refuses_an_event_that_breaks_the_contract() -> None:
    bad = msgspec.structs.replace(sample_event(), title="")
    with pytest.raises(msgspec.ValidationError, match="title"):
        encode_case_event(bad)
