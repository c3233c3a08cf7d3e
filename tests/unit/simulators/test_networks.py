"""The simulated networks against intake's own code path (`intake.check.check`): every valid record
is accepted and placed inside the city, every broken one refused with the reason it was broken for;
incidents make one case of three networks; the stream is reproducible from its seed."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from intake.check import check
from intake.domain.feeds.hj212.packet import parse_packet
from intake.domain.feeds.party.record import parse_party
from intake.domain.feeds.safety.record import parse_safety
from simulators.domain.networks import BAD_KINDS, Emission, Mix, Networks

T0 = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)


def stream(city, *, seed: int = 7, n: int = 2500, step_s: int = 20, mix: Mix | None = None) -> list[Emission]:
    sim = Networks(city, seed, T0, mix=mix or Mix(incident=0.01, bad=0.03))
    out: list[Emission] = []
    for i in range(n):
        out += sim.next(T0 + timedelta(seconds=step_s * i))
    return out


def test_every_record_is_accepted_inside_the_city_or_refused_for_its_fault(city, make_intake) -> None:
    intake = make_intake()
    emissions = stream(city)
    seen: Counter[tuple[str, str]] = Counter()
    for e in emissions:  # one by one, in order: updates and cancels follow their alerts
        [line] = check(e.feed, [(e.kind, e.value)], intake=intake)
        seen[(e.feed, e.kind)] += 1
        if e.expect is None:
            assert line["status"] == "ok", (e.feed, e.kind, line)
            assert line["inside_city"] is True
        else:
            assert line["status"] in ("rejected", "quarantined")
            assert line["reason"] == e.expect, (e.kind, line)
    # the stream has every kind of record the issue asks for
    for kind in (
        "normal",
        "exceedance",
        "fault",
        "alert",
        "update",
        "cancel",
        "report",
        "request",
        "incident",
    ):
        assert any(k == kind for _, k in seen), kind
    for bad, (feed, _) in BAD_KINDS.items():
        assert seen[(feed, bad)] > 0, bad


def test_an_incident_is_one_case_of_three_networks(city, make_intake) -> None:
    by_incident: dict[str, list[Emission]] = defaultdict(list)
    for e in stream(city, seed=3, n=600, mix=Mix(incident=0.05)):
        if e.incident:
            by_incident[e.incident].append(e)
    complete = {k: v for k, v in by_incident.items() if len(v) == 3}
    assert len(complete) >= 5
    for records in complete.values():
        assert {e.feed for e in records} == {"cap", "safety", "party"}
        intake = make_intake()  # alone, so no other incident's case can absorb it
        events = [
            ev for e in records for ev in check(e.feed, [(e.kind, e.value)], intake=intake)[0]["events"]
        ]
        assert [ev["event_type"] for ev in events] == ["case.reported", "case.linked", "case.linked"]
        assert len({ev["case_id"] for ev in events}) == 1


def test_keys_are_what_the_contracts_say(city) -> None:
    for e in stream(city, n=800):
        if e.expect is not None:
            continue
        if e.feed == "hj212":
            assert parse_packet(e.value).mn == e.key
        elif e.feed == "safety":
            assert parse_safety(e.value).source_id == e.key
        elif e.feed == "party":
            assert parse_party(e.value).source_id == e.key
        elif e.feed == "cap":
            assert f"<sender>{e.key}</sender>".encode() in e.value


def test_the_same_seed_gives_the_same_records(city) -> None:
    a, b = stream(city, seed=5, n=400), stream(city, seed=5, n=400)
    assert a == b
    assert stream(city, seed=6, n=400) != a


@pytest.mark.parametrize("seed", [1, 2])
def test_safety_ids_never_repeat_within_a_run(city, seed: int) -> None:
    sim = Networks(city, seed, T0)
    ids = [sim.safety_id(T0 + timedelta(milliseconds=30 * i)) for i in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 22 and i.startswith("PA321003") for i in ids)
