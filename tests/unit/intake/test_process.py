"""The intake core end to end without Kafka: feeds, placement, correlation, events, refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from support.records import BEIJING, HOME, cap_alert, hj212_packet, party_diary, safety_event
from support.shared import CONFORMANCE

from intake.domain.crosswalk import Crosswalk
from intake.domain.normalize import Provenance
from intake.domain.process import Inbound, Intake
from intake.geography import ViewGeography
from onegrid_contracts.case_event import encode_case_event

CONTRACTS = Path(__file__).resolve().parents[3] / "contracts"
T0 = datetime(2026, 11, 30, 11, 10, tzinfo=UTC)


@pytest.fixture
def intake(reference_view) -> Intake:
    return Intake(crosswalk=Crosswalk.load(), geography=ViewGeography(reference_view))


@pytest.fixture(scope="module")
def case_schema() -> Draft202012Validator:
    schemas = [json.loads(p.read_text()) for p in (CONTRACTS / "schemas").glob("*.json")]
    registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas)
    schema = next(s for s in schemas if s["$id"].endswith("case-event.v1.json"))
    return Draft202012Validator(schema, registry=registry)


def wire(ev) -> object:
    """The event as it travels on cases.v1."""
    return json.loads(encode_case_event(ev))


def inbound(feed: str, raw: bytes, offset: int = 0, at: datetime = T0) -> Inbound:
    return Inbound(feed, raw, Provenance(f"legacy.{feed}", 0, offset, at))


def run(intake: Intake, *items: Inbound):
    out = intake.process(list(items))
    out.apply()
    return out.outcomes


def test_cap_alert_update_cancel_drive_one_case(intake: Intake, case_schema) -> None:
    a, u, c = run(
        intake,
        inbound("cap", cap_alert("YZ-1")),
        inbound("cap", cap_alert("YZ-2", msg_type="Update", refs=("YZ-1",), severity="Extreme")),
        inbound("cap", cap_alert("YZ-3", msg_type="Cancel", refs=("YZ-1",))),
    )
    assert [o.error for o in (a, u, c)] == [None, None, None]
    kinds = [o.events[0].event_type for o in (a, u, c)]
    assert kinds == ["case.reported", "case.amended", "case.cancelled"]
    assert len({o.events[0].case_id for o in (a, u, c)}) == 1
    first = a.events[0]
    assert first.category.code == "emergency.fire" and first.location.area is not None
    assert first.division.district == "321003" and first.location.inside_city
    assert u.events[0].severity.level == 1  # Extreme
    for o in (a, u, c):
        assert list(case_schema.iter_errors(wire(o.events[0]))) == []


def test_one_fire_seen_by_three_networks_is_one_case(intake: Intake, case_schema) -> None:
    near = (HOME[0] + 0.001, HOME[1] + 0.001)  # ~140 m away
    outs = run(
        intake,
        inbound("safety", safety_event("PA32100320261130000101")),
        inbound("party", party_diary("MQRJ2026113000101", wgs=near), 1),
        inbound("cap", cap_alert("YZ-FIRE-9"), 2),
    )
    events = [o.events[0] for o in outs]
    assert [e.event_type for e in events] == ["case.reported", "case.linked", "case.linked"]
    assert len({e.case_id for e in events}) == 1
    merge = events[1].merge
    assert merge is not None and merge.reason == "correlation.nearby_same_family"
    assert merge.matched_case_id == events[0].case_id and 100 < (merge.distance_m or 0) < 200
    assert events[1].source.network == "party" and events[1].location.original.system == "BD09"
    for e in events:
        assert list(case_schema.iter_errors(wire(e))) == []


def test_far_apart_or_long_after_are_separate_cases(intake: Intake) -> None:
    far = (HOME[0] + 0.05, HOME[1])  # ~5.5 km
    later = datetime(2026, 12, 1, 10, 0, tzinfo=BEIJING)
    outs = run(
        intake,
        inbound("safety", safety_event("PA32100320261130000201")),
        inbound("party", party_diary("MQRJ2026113000201", wgs=far)),
        inbound("party", party_diary("MQRJ2026113000202", when=later)),
    )
    assert [o.events[0].event_type for o in outs] == ["case.reported"] * 3


def test_the_same_record_twice_is_taken_in_once(intake: Intake) -> None:
    raw = party_diary("MQRJ2026113000301")
    first, again = run(intake, inbound("party", raw), inbound("party", raw, 1))
    assert len(first.events) == 1 and again.events == [] and again.error is None
    (later,) = run(intake, inbound("party", raw, 2))  # and in a later batch
    assert later.events == []


def test_a_batch_that_is_not_applied_leaves_no_trace(intake: Intake) -> None:
    raw = party_diary("MQRJ2026113000401")
    uncommitted = intake.process([inbound("party", raw)])
    assert len(uncommitted.outcomes[0].events) == 1
    (retried,) = run(intake, inbound("party", raw))  # the retry sees a fresh book
    assert len(retried.events) == 1 and retried.events[0].event_type == "case.reported"


def test_an_exceedance_episode_is_one_case(intake: Intake) -> None:
    mn = "321003A0000001"
    t = datetime(2026, 11, 30, 8, 0, tzinfo=BEIJING)
    high = [
        inbound("hj212", hj212_packet(mn, t + timedelta(minutes=i), {"a34004": 180.0}), i) for i in range(5)
    ]
    low = [
        inbound("hj212", hj212_packet(mn, t + timedelta(minutes=5 + i), {"a34004": 20.0}), 5 + i)
        for i in range(3)
    ]
    outs = run(intake, *high, *low)
    events = [e for o in outs for e in o.events]
    assert [e.event_type for e in events] == ["case.reported", "case.amended"]
    assert events[0].case_id == events[1].case_id
    assert events[0].category.code == "env.air.exceedance"
    assert events[1].attributes["episode_status"] == "closed"
    assert events[0].division.district == "321003"


def test_episode_state_survives_a_restart(intake: Intake, reference_view) -> None:
    mn = "321003A0000002"
    t = datetime(2026, 11, 30, 9, 0, tzinfo=BEIJING)
    run(intake, inbound("hj212", hj212_packet(mn, t, {"a34004": 200.0})))
    restarted = Intake(crosswalk=Crosswalk.load(), geography=ViewGeography(reference_view))
    restarted.env.slices.update(intake.env.slices)
    restarted.book = intake.book
    (o,) = run(restarted, inbound("hj212", hj212_packet(mn, t + timedelta(minutes=1), {"a34004": 210.0}), 1))
    assert o.events == []  # the same episode continues: no second case


@pytest.mark.parametrize(
    ("feed", "raw", "reason", "kind"),
    [
        ("hj212", b"##0010QN=1;ST=22&&0000\r\n", "hj212.length_mismatch", "Rejected"),
        (
            "hj212",
            hj212_packet("UNKNOWN-MN-1", T0, {"a34004": 10.0}),
            "registry.unknown_station",
            "Quarantined",
        ),
        ("party", party_diary("MQRJ2026113000501", code="MQ77"), "crosswalk.unmapped_code", "Quarantined"),
        (
            "safety",
            safety_event("PA32100320261130000601", related="PA32100320261130099999"),
            "correlation.unknown_reference",
            "Quarantined",
        ),
        (
            "cap",
            (CONFORMANCE / "cap/canada.cap").read_bytes(),
            "place.outside_city",
            "Rejected",
        ),
        ("cap", (CONFORMANCE / "cap/xee.cap").read_bytes(), "cap.forbidden_xml", "Rejected"),
        (
            "party",
            party_diary("MQRJ2026113000701", wgs=(39.9042, 116.4074)),
            "place.outside_city",
            "Rejected",
        ),
        ("party", b"\xff\xfe not json", "party.encoding", "Rejected"),
    ],
)
def test_refusals_have_precise_reasons(intake: Intake, feed: str, raw: bytes, reason: str, kind: str) -> None:
    (o,) = run(intake, inbound(feed, raw))
    assert o.error is not None and o.events == []
    assert (o.error.reason, type(o.error).__name__) == (reason, kind), o.error.detail


def test_non_actual_cap_messages_make_no_case(intake: Intake) -> None:
    (o,) = run(intake, inbound("cap", cap_alert("YZ-EX-1", status="Exercise")))
    assert o.error is None and o.events == []


def test_a_restarted_book_still_merges_with_area_alerts(intake: Intake, reference_view) -> None:
    """The book rebuilt from cases.v1 knows recent cases by their area too, not only by points."""
    from intake.domain.correlation import CaseBook
    from intake.domain.process import observe_event
    from onegrid_contracts.case_event import decode_case_event

    (alert,) = run(intake, inbound("cap", cap_alert("YZ-AREA-1")))
    rebuilt = CaseBook()
    observe_event(rebuilt, decode_case_event(encode_case_event(alert.events[0])))
    restarted = Intake(crosswalk=Crosswalk.load(), geography=ViewGeography(reference_view), book=rebuilt)
    (diary,) = run(restarted, inbound("party", party_diary("MQRJ2026113000801"), 1))
    assert diary.events[0].event_type == "case.linked"
    assert diary.events[0].case_id == alert.events[0].case_id


def _book_state(book) -> tuple:  # type: ignore[no-untyped-def]
    recent = {
        family: sorted(
            (str(r.case_id), r.shape.wkt, r.at.isoformat(), r.network, tuple(r.bounds), r.point)
            for r in index.by_time
        )
        for family, index in book.recent.items()
    }
    return dict(book.sources), sorted(book.taken), book.taken_latest, book.latest, recent


def test_the_book_read_back_lightly_is_the_book_read_back_in_full(intake: Intake) -> None:
    """Every instance reads `cases.v1` back into its case book, its own events too: the light
    decode (`decode_seen`: the fields the book takes, nothing validated twice) and the shapes made
    only for cases the book does not hold give the very book the full, validated decode gave."""
    from intake.domain.correlation import CaseBook
    from intake.domain.process import decode_seen, observe_event
    from onegrid_contracts.case_event import decode_case_event

    outcomes = run(
        intake,
        inbound("cap", cap_alert("YZ-AREA-2")),
        inbound("party", party_diary("MQRJ2026113000901"), 1),
        inbound("party", party_diary("MQRJ2026113000902", wgs=(32.41, 119.38)), 2),
        inbound("safety", safety_event("SE-LIGHT-1"), 3),
    )
    events = [encode_case_event(e) for o in outcomes for e in o.events]
    assert {json.loads(e)["event_type"] for e in events} >= {"case.reported"}
    assert any(json.loads(e)["location"]["area"] for e in events)
    assert any(json.loads(e)["location"]["point"] for e in events)
    full, light = CaseBook(), CaseBook()
    for raw in events:
        observe_event(full, decode_case_event(raw))
        observe_event(light, decode_seen(raw))
    assert _book_state(light) == _book_state(full)
    for raw in events:  # read back again (a restart, another instance's table): nothing changes
        observe_event(light, decode_seen(raw))
    assert _book_state(light) == _book_state(full)


def test_a_silent_station_opens_one_case_and_its_next_packet_closes_it(intake: Intake) -> None:
    mn = "321003A0000003"
    t = datetime(2026, 11, 30, 6, 0, tzinfo=BEIJING)
    run(intake, inbound("hj212", hj212_packet(mn, t, {"a34004": 20.0})))
    # Silence is judged by receipt time (the inbound's), not by the packet's own clock.
    events, outcome = intake.silence(T0 + timedelta(hours=3))
    outcome.apply()
    mine = [e for e in events if e.attributes["mn"] == mn]
    assert [e.event_type for e in mine] == ["case.reported"]
    assert mine[0].category.code == "env.monitoring.silent"
    again, _ = intake.silence(T0 + timedelta(hours=4))
    assert [e for e in again if e.attributes["mn"] == mn] == []  # one case per silence, not one per check
    later = hj212_packet(mn, t + timedelta(hours=4), {"a34004": 20.0})
    (back,) = run(intake, inbound("hj212", later, 1, at=T0 + timedelta(hours=4)))
    assert [e.event_type for e in back.events] == ["case.amended"]
    assert (
        back.events[0].case_id == mine[0].case_id and back.events[0].attributes["episode_status"] == "closed"
    )


def test_split_packets_are_assembled_before_the_rules_see_them(intake: Intake) -> None:
    from intake.domain.feeds.hj212.packet import build_packet

    mn = "321003A0000004"
    q = "20261130080000000"
    head = f"QN={q};ST=22;CN=2051;PW=123456;MN={mn};Flag=6;PNUM=2;PNO=%d;CP=&&DataTime=20261130080000;%s&&"
    part1 = build_packet(head % (1, "a34004-Avg=190,a34004-Flag=N"))
    part2 = build_packet(head % (2, "a34002-Avg=20,a34002-Flag=N"))
    first, second = run(intake, inbound("hj212", part1), inbound("hj212", part2, 1))
    assert first.events == [] and first.error is None  # waiting for its sibling
    assert [e.category.code for e in second.events] == ["env.air.exceedance"]
    assert second.events[0].attributes["pollutant"] == "a34004"


def test_correlation_windows_are_configurable(reference_view) -> None:
    from intake.domain.correlation import CaseBook, correlation_windows

    strict = Intake(
        crosswalk=Crosswalk.load(),
        geography=ViewGeography(reference_view),
        book=CaseBook(windows=correlation_windows({"fire": {"radius_m": 50}})),
    )
    near = (HOME[0] + 0.001, HOME[1] + 0.001)  # ~140 m: merged by default, not within 50 m
    a, b = run(
        strict,
        inbound("safety", safety_event("PA32100320261130000901")),
        inbound("party", party_diary("MQRJ2026113000901", wgs=near), 1),
    )
    assert [a.events[0].event_type, b.events[0].event_type] == ["case.reported", "case.reported"]
