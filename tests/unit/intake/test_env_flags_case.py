"""HJ 212 data flags as field devices send them: the field suffix (``-Flag``/``-flag``/``-FLAG``) and
the flag letter (``D``/``d``) mean the same in any letter case (HJ 212-2017 §6.6.4 Table 7)."""

from datetime import UTC, datetime, timedelta

import pytest

from intake.domain.errors import Rejected
from intake.domain.feeds.hj212.findings import EnvFinding
from intake.domain.feeds.hj212.limits import EnvRuleConfig
from intake.domain.feeds.hj212.packet import BEIJING, build_packet, parse_packet
from intake.domain.feeds.hj212.rules import EnvRuleEngine

T0 = datetime(2024, 5, 1, 0, 0, tzinfo=UTC)


def segment(at: datetime, cp_item: str, mn: str = "AIR01") -> str:
    local = at.astimezone(BEIJING)
    return f"QN={local:%Y%m%d%H%M%S}000;ST=22;CN=2061;PW=1;MN={mn};Flag=4;CP=&&DataTime={local:%Y%m%d%H%M%S};{cp_item}&&"


def run(items: list[str]) -> list[EnvFinding]:
    engine = EnvRuleEngine(EnvRuleConfig(close_after_normal=2))
    findings: list[EnvFinding] = []
    for n, item in enumerate(items):
        at = T0 + timedelta(hours=n)
        findings += engine.process(parse_packet(build_packet(segment(at, item))), received_at=at)
    return findings


# Our own record of the class: a PM2.5 analyser in fault (999 is its error value) that spells the
# suffix in lower case, as many data loggers do. Before: an exceedance case at 999 µg/m³.
FAULT_LOWER = "a34004-Avg=999,a34004-flag=D"


@pytest.mark.parametrize(
    "item", [FAULT_LOWER, "a34004-Avg=999,a34004-FLAG=D", "a34004-avg=999,a34004-flag=d"]
)
def test_a_fault_flag_in_any_case_opens_a_fault_episode_not_an_exceedance(item: str) -> None:
    [finding] = run([item])
    assert (finding.kind, finding.status, finding.data_flag, finding.value) == ("fault", "opened", "D", 999.0)


@pytest.mark.parametrize("flag", ["M", "m", "C", "c", "F", "f", "S", "s"])
@pytest.mark.parametrize("suffix", ["Flag", "flag", "FLAG"])
def test_maintenance_calibration_stopped_manual_in_any_case_open_no_case(suffix: str, flag: str) -> None:
    assert run([f"a34004-Avg=500,a34004-{suffix}={flag}"]) == []


def test_lower_case_value_field_is_read_and_normal_lower_case_flags_count_as_normal() -> None:
    findings = run(
        ["a34004-rtd=90,a34004-flag=n", "a34004-RTD=10,a34004-flag=N", "a34004-Rtd=10,a34004-flag=t"]
    )
    assert [(f.kind, f.status, f.value) for f in findings] == [
        ("exceedance", "opened", 90.0),
        ("exceedance", "closed", 10.0),
    ]


def test_the_raw_spelling_is_kept_in_the_parsed_packet() -> None:
    packet = parse_packet(build_packet(segment(T0, FAULT_LOWER)))
    assert dict(packet.cp_items["a34004"]) == {"Avg": "999", "flag": "D"}


def test_one_field_sent_twice_in_two_spellings_is_refused() -> None:
    with pytest.raises(Rejected) as exc:
        parse_packet(build_packet(segment(T0, "a34004-Avg=10,a34004-Flag=N,a34004-flag=D")))
    assert exc.value.reason == "hj212.cp"
