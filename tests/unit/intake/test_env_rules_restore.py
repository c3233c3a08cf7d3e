"""Restore-then-continue must equal uninterrupted processing, wherever the restart falls."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from intake.domain.feeds.hj212.findings import EnvFinding
from intake.domain.feeds.hj212.limits import EnvRuleConfig
from intake.domain.feeds.hj212.packet import BEIJING, Hj212Packet, build_packet, parse_packet
from intake.domain.feeds.hj212.rules import EnvRuleEngine

T0 = datetime(2024, 5, 1, tzinfo=UTC)
CONFIG = EnvRuleConfig(close_after_normal=2)


@dataclass(frozen=True)
class Step:
    minutes: int  # time since the previous step
    packet: Hj212Packet | None  # None: a silence check


@st.composite
def steps(draw: st.DrawFn) -> list[Step]:
    result: list[Step] = []
    at = T0
    for _ in range(draw(st.integers(1, 40))):
        minutes = draw(st.integers(0, 200))
        at += timedelta(minutes=minutes)
        if draw(st.integers(0, 4)) == 0:
            result.append(Step(minutes, None))
            continue
        mn = draw(st.sampled_from(["A", "B"]))
        cn = draw(st.sampled_from(["2061", "2051", "9014"]))
        items = []
        for code in draw(st.lists(st.sampled_from(["a34004", "a21026", "a05024"]), unique=True, max_size=3)):
            value = draw(st.integers(0, 400))
            flag = draw(st.sampled_from(["N", "N", "N", "D", "B", "M", "T"]))
            items.append(f"{code}-Avg={value},{code}-Flag={flag}")
        local = at.astimezone(BEIJING)
        cp = ";".join([f"DataTime={local:%Y%m%d%H%M%S}", *items])
        segment = f"QN={local:%Y%m%d%H%M%S}000;ST=22;CN={cn};PW=1;MN={mn};Flag=4;CP=&&{cp}&&"
        result.append(Step(minutes, parse_packet(build_packet(segment))))
    return result


def run(engine: EnvRuleEngine, plan: list[Step], start: datetime) -> tuple[list[EnvFinding], datetime]:
    findings: list[EnvFinding] = []
    at = start
    for step in plan:
        at += timedelta(minutes=step.minutes)
        if step.packet is None:
            findings += engine.check_silence(at)
        else:
            findings += engine.process(step.packet, received_at=at)
    return findings, at


@settings(max_examples=150, deadline=None)
@given(steps(), st.data())
def test_restore_then_continue_equals_uninterrupted(plan: list[Step], data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(plan)))
    uninterrupted = EnvRuleEngine(CONFIG)
    expected, _ = run(uninterrupted, plan, T0)

    before = EnvRuleEngine(CONFIG)
    head, at = run(before, plan[:cut], T0)
    stored = json.loads(json.dumps(before.snapshot()))
    restored = EnvRuleEngine.restore(CONFIG, stored)
    assert restored.snapshot() == stored
    tail, _ = run(restored, plan[cut:], at)

    assert head + tail == expected
    assert restored.snapshot() == uninterrupted.snapshot()


def test_the_property_sees_open_episodes_at_the_cut() -> None:
    """Guard against a vacuous property: a snapshot taken mid-episode must carry the episode."""
    engine = EnvRuleEngine(CONFIG)
    local = T0.astimezone(BEIJING)
    segment = f"QN=1;ST=22;CN=2061;PW=1;MN=A;Flag=4;CP=&&DataTime={local:%Y%m%d%H%M%S};a34004-Avg=99&&"
    engine.process(parse_packet(build_packet(segment)), received_at=T0)
    snapshot = json.loads(json.dumps(engine.snapshot()))
    assert [e["kind"] for e in snapshot["episodes"]] == ["exceedance"]
    assert snapshot["stations"]["A"]["interval_s"] == 3600


def test_a_state_slice_older_than_the_one_held_is_not_applied() -> None:
    """Issue 13.2: slices carry a revision; a late echo of an earlier write never undoes a newer one."""
    from intake.domain.feeds.hj212.feed import EnvState

    state = EnvState()
    newer = {"station": None, "episodes": [], "rev": 2}
    older = {"station": None, "episodes": [{"episode_id": "E1"}], "rev": 1}
    state.observe("MN1", newer)
    state.observe("MN1", older)
    assert state.slices["MN1"] == newer
    state.observe("MN1", {"station": None, "episodes": [], "rev": 3})
    assert state.slices["MN1"]["rev"] == 3
    state.observe("MN1", None)  # a tombstone removes the station
    assert "MN1" not in state.slices
