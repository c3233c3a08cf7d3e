"""The scripted lifecycle stream gives exactly the figures worked out by hand (scripted_stream.py):
per case (on time, acknowledge and resolve times, hops, verification checks) and per metric row."""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from support import scripted_stream as script

from evaluation.domain.case_facts import CaseFacts, Policy, decode_facts, encode_facts, fold
from evaluation.domain.metrics import MetricKey, MetricRow, aggregate_all
from onegrid_contracts.lifecycle import LifecycleEvent, decode_lifecycle

SCHEMAS = Path(__file__).resolve().parents[3] / "contracts" / "schemas"
POLICY = Policy(reopen_window_s=7 * 86400, verification_limit_s=86400)


def lifecycle_validator() -> Draft202012Validator:
    schemas = [json.loads(p.read_text(encoding="utf-8")) for p in SCHEMAS.glob("*.json")]
    registry = Registry().with_resources([(s["$id"], Resource.from_contents(s)) for s in schemas])
    schema = json.loads((SCHEMAS / "lifecycle-event.v1.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)


def decoded(bodies: list[dict[str, Any]]) -> list[LifecycleEvent]:
    return [decode_lifecycle(json.dumps(b).encode()) for b in bodies]


def facts_by_name(policy: Policy = POLICY) -> dict[str, CaseFacts]:
    return {name: fold(decoded(s.events), policy) for name, s in script.cases().items()}


def rows(facts: list[CaseFacts]) -> dict[MetricKey, MetricRow]:
    return aggregate_all(facts, POLICY.definition())


def key(k: tuple[str, str, str, str]) -> MetricKey:
    return MetricKey(k[0], k[1], k[2], date.fromisoformat(k[3]))


def test_every_scripted_event_is_a_valid_lifecycle_event() -> None:
    v = lifecycle_validator()
    bodies = script.stream()
    assert len(bodies) == sum(len(s.events) for s in script.cases().values()) + 1
    for body in bodies:
        errors = [e.message for e in v.iter_errors(body)]
        assert not errors, (body["case_id"], body["seq"], errors)


@pytest.mark.parametrize("name", sorted(script.PER_CASE))
def test_case_facts_match_the_hand_figures(name: str) -> None:
    f = facts_by_name()[name]
    on_time, ack, resolve, hops, checks, in_time = script.PER_CASE[name]
    assert (f.on_time, f.acknowledge_s, f.resolve_s, f.hops) == (on_time, ack, resolve, hops)
    assert (f.verifications, f.verifications_in_time) == (checks, in_time)
    assert f.complete


def test_reopen_within_the_window_is_not_on_time_though_dispatch_flagged_the_first_closure() -> None:
    b = script.cases()["B"]
    first_close = next(e for e in b.events if e["to_state"] == "closed")
    assert first_close["on_time"] is True  # what dispatch said at the time
    f = facts_by_name()["B"]
    assert (f.state, f.reopens, f.reopens_in_window, f.on_time) == ("closed", 1, 1, False)


def test_a_reopen_beyond_a_shorter_window_does_not_count_against_the_first_closure() -> None:
    f = facts_by_name(Policy(reopen_window_s=86400))["B"]  # reopened 38 h after closing
    assert (f.reopens, f.reopens_in_window, f.on_time) == (1, 0, True)


def test_suspension_stops_the_sla_clock() -> None:
    f = facts_by_name()["D"]
    assert f.paused_s == 86400.0
    assert f.resolve_due_at is not None and f.resolve_due_at.isoformat() == "2026-03-05T01:00:00+00:00"
    last = script.cases()["D"].events[-1]
    assert last["on_time"] is False and f.on_time  # dispatch's flag ignores the pause; the rule does not


def test_return_rework_and_whistle_are_counted() -> None:
    facts = facts_by_name()
    assert (facts["C"].returns, facts["C"].department, facts["C"].departments) == (
        1,
        "chengguan",
        ("shengtai", "chengguan"),
    )
    assert (facts["E"].reworks, facts["E"].whistles, facts["E"].verifications_in_time) == (1, 1, 1)
    assert facts["F"].self_handled and facts["F"].department is None


@pytest.mark.parametrize("k", sorted(script.EXPECTED), ids=lambda k: "/".join(k))
def test_metric_rows_match_the_hand_figures(k: tuple[str, str, str, str]) -> None:
    row = rows(list(facts_by_name().values()))[key(k)]
    got = {c: getattr(row, c) for c in script.EXPECTED[k]}
    assert got == script.EXPECTED[k]


def test_row_counts_per_granularity() -> None:
    all_rows = rows(list(facts_by_name().values()))
    for g, n in script.EXPECTED_ROW_COUNT.items():
        assert sum(1 for k in all_rows if k.granularity == g) == n
    assert {k.period_start.isoformat() for k in all_rows if k.granularity == "day"} == {
        "2026-03-02",
        "2026-03-03",
        "2026-03-04",
    }


def test_repeats_and_arrival_order_change_nothing() -> None:
    events = decoded(script.stream())
    expected = rows(list(facts_by_name().values()))
    for seed in range(5):
        shuffled = events + events[: 7 * seed]
        random.Random(seed).shuffle(shuffled)
        by_case: dict[str, list[LifecycleEvent]] = {}
        for e in shuffled:
            by_case.setdefault(str(e.case_id), []).append(e)
        assert rows([fold(evs, POLICY) for evs in by_case.values()]) == expected


def test_a_gap_in_seq_is_flagged_and_counted() -> None:
    evs = decoded(script.cases()["A"].events)
    f = fold([e for e in evs if e.seq != 3], POLICY)
    assert not f.complete and f.acknowledge_s is None
    assert rows([f])[MetricKey("all", "*", "month", date(2026, 3, 1))].incomplete == 1


def test_facts_round_trip_through_their_json() -> None:
    for f in facts_by_name().values():
        assert decode_facts(encode_facts(f)) == f
