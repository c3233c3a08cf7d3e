"""Every case event intake builds keeps the contract: the pipeline encodes its events without decoding
them again (a second decode per event cost more than the encoding), so this proves, over generated
records of every feed that makes cases, that what the pipeline writes to cases.v1 decodes with the
contract's validating decoder to the very event it was built from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.records import BEIJING, HOME, cap_alert, open311_form, party_diary, safety_event

from intake.domain.crosswalk import Crosswalk
from intake.domain.feeds.open311.record import reports_from_open311
from intake.domain.process import Intake
from intake.geography import ViewGeography
from intake.pipeline import IntakePipeline
from onegrid.kafka.memory import MemoryRecord
from onegrid_contracts.case_event import decode_case_event, encode_case_event

T0 = datetime(2026, 11, 30, 11, 10, tzinfo=UTC)
_TEXT = st.text(alphabet="abcXYZ 0123-火灾冒烟积水小区东门路口", min_size=1, max_size=120).filter(str.strip)
_NEAR = st.tuples(st.floats(-0.03, 0.03), st.floats(-0.03, 0.03)).map(
    lambda d: (HOME[0] + d[0], HOME[1] + d[1])
)
_WHEN = st.integers(0, 3 * 24 * 60).map(
    lambda m: datetime(2026, 11, 28, 8, 0, tzinfo=BEIJING) + timedelta(minutes=m)
)


@st.composite
def records(draw: st.DrawFn) -> tuple[str, str, bytes, tuple[tuple[str, bytes], ...]]:
    n = draw(st.integers(0, 10**8))
    feed = draw(st.sampled_from(["cap", "safety", "party", "open311"]))
    where, when, title = draw(_NEAR), draw(_WHEN), draw(_TEXT)
    if feed == "cap":
        raw = cap_alert(
            f"YZ-{n}",
            severity=draw(st.sampled_from(["Extreme", "Severe", "Moderate", "Minor"])),
            centre=where,
            radius_km=draw(st.floats(0.05, 3.0)),
            sent=when,
            headline=title,
        )
        return "legacy.emergency.cap.v1", feed, raw, ()
    if feed == "safety":
        code = draw(st.sampled_from(["0101", "0201", "0301", "0302", "0401"]))
        level = draw(st.sampled_from(["一般", "较大", "重大", "特别重大"]))
        raw = safety_event(
            f"PA3210032026113{n % 10**7:07d}", code=code, level=level, wgs=where, when=when, title=title
        )
        return "legacy.safety.v1", feed, raw, ()
    if feed == "party":
        code = draw(st.sampled_from(["MQ01", "MQ02", "MQ04", "MQ05"]))
        raw = party_diary(f"MQRJ{n}", code=code, wgs=where, when=when, title=title[:100], content=title)
        return "legacy.party.v1", feed, raw, ()
    code = draw(st.sampled_from(["001", "002", "003", "004", "005"]))
    raw = open311_form(code, wgs=where, description=title, address=title)
    request = f"7d1f3a52-0000-4000-8000-{n:012d}"
    received = when.astimezone(UTC).isoformat().replace("+00:00", "Z")
    headers = (("open311_service_request_id", request.encode()), ("open311_received_at", received.encode()))
    return "legacy.open311.v1", feed, raw, headers


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(records(), min_size=1, max_size=6))
async def test_what_the_pipeline_writes_decodes_to_the_event_built(reference_view, batch) -> None:
    intake = Intake(
        crosswalk=Crosswalk.load(),
        geography=ViewGeography(reference_view),
        open311=lambda inbound: reports_from_open311(inbound.value, inbound.headers),
    )
    built: list = []
    process = intake.process

    def keep(inbound):  # the events as built, before the pipeline encodes them
        out = process(inbound)
        built.extend(ev for o in out.outcomes for ev in o.events)
        return out

    intake.process = keep  # type: ignore[method-assign]
    pipeline = IntakePipeline(intake)
    ms = int(T0.timestamp() * 1000)
    result = await pipeline.handle(
        [MemoryRecord(topic, 0, i, None, raw, hs, ms) for i, (topic, _feed, raw, hs) in enumerate(batch)]
    )
    written = [o.value for o in result.outputs if o.topic == pipeline.topics.cases]
    assert result.dead_letters == []  # generated well: every record is taken in
    assert len(written) == len(built)
    for data, ev in zip(written, built, strict=True):
        assert decode_case_event(data) == ev
        assert data == encode_case_event(ev)  # the validating encoder gives the same bytes


def test_the_check_left_out_is_real(reference_view) -> None:
    # An event that broke the contract would encode unvalidated; the validating encoder and the
    # consumers' decoder refuse it. So the proof above is what keeps cases.v1 clean.
    from intake.domain.normalize import Provenance
    from intake.domain.process import Inbound

    intake = Intake(crosswalk=Crosswalk.load(), geography=ViewGeography(reference_view))
    out = intake.process([Inbound("party", party_diary("MQRJ1"), Provenance("legacy.party.v1", 0, 0, T0))])
    bad = msgspec.structs.replace(out.outcomes[0].events[0], title="")
    data = encode_case_event(bad, validate=False)
    with pytest.raises(msgspec.ValidationError, match="title"):
        decode_case_event(data)
    with pytest.raises(msgspec.ValidationError, match="title"):
        encode_case_event(bad)
