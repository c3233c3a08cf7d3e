import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from support.shared import CONFORMANCE

from intake.domain.feeds.hj212.findings import EnvFinding
from intake.domain.feeds.hj212.limits import EnvRuleConfig, Limit
from intake.domain.feeds.hj212.packet import BEIJING, Hj212Packet, build_packet, parse_packet
from intake.domain.feeds.hj212.rules import EnvRuleEngine

T0 = datetime(2024, 5, 1, 0, 0, tzinfo=UTC)


def packet(
    at: datetime,
    items: dict[str, tuple[str, str | None]],
    *,
    mn: str = "AIR01",
    st: str = "22",
    cn: str = "2061",
) -> Hj212Packet:
    local = at.astimezone(BEIJING)
    cp = [f"DataTime={local:%Y%m%d%H%M%S}"]
    for code, (value, flag) in items.items():
        cp.append(f"{code}-Avg={value}" + ("" if flag is None else f",{code}-Flag={flag}"))
    segment = f"QN={local:%Y%m%d%H%M%S}000;ST={st};CN={cn};PW=1;MN={mn};Flag=4;CP=&&{';'.join(cp)}&&"
    return parse_packet(build_packet(segment))


def feed(
    engine: EnvRuleEngine, readings: Sequence[tuple[str, str | None]], code: str = "a34004"
) -> list[EnvFinding]:
    findings: list[EnvFinding] = []
    for n, reading in enumerate(readings):
        at = T0 + timedelta(hours=n)
        findings += engine.process(packet(at, {code: reading}), received_at=at)
    return findings


def summary(findings: list[EnvFinding]) -> list[tuple[str, str, float | None]]:
    return [(f.kind, f.status, f.value) for f in findings]


def test_a_persisting_exceedance_is_one_episode() -> None:
    engine = EnvRuleEngine(EnvRuleConfig())
    values = ["50", "80", "90", "100", "70", "110", "60", "60", "60", "90"]
    findings = feed(engine, [(v, "N") for v in values])
    assert summary(findings) == [
        ("exceedance", "opened", 80.0),
        ("exceedance", "updated", 100.0),  # 90 is within 20 % of 80, 100 is not
        ("exceedance", "closed", 60.0),  # 110 reset the streak; it is within 20 % of 100
        ("exceedance", "opened", 90.0),  # a new episode after closing
    ]
    opened, updated, closed, reopened = findings
    assert opened.episode_id == updated.episode_id == closed.episode_id != reopened.episode_id
    assert (opened.limit, opened.unit, opened.pollutant, opened.st, opened.mn) == (
        75,
        "µg/m³",
        "a34004",
        "22",
        "AIR01",
    )
    assert closed.peak == 110 and updated.peak == 100 and opened.peak == 80
    assert closed.observed_at == T0 + timedelta(hours=8)  # the third 60 after 110, not the second
    assert opened.observed_at == T0 + timedelta(hours=1) and opened.qn == "20240501090000000"


def test_fault_flags_open_a_fault_episode_and_are_not_exceedances() -> None:
    engine = EnvRuleEngine(EnvRuleConfig())
    findings = feed(engine, [("999", "D"), ("999", "B"), ("10", "N"), ("10", None), ("10", "T")])
    assert [(f.kind, f.status, f.data_flag) for f in findings] == [
        ("fault", "opened", "D"),
        ("fault", "closed", "T"),
    ]
    assert findings[0].pollutant == "a34004" and findings[0].limit is None and findings[0].value == 999


def test_maintenance_readings_neither_breach_nor_close() -> None:
    engine = EnvRuleEngine(EnvRuleConfig(close_after_normal=2))
    findings = feed(
        engine, [("90", "N"), ("500", "M"), ("10", "C"), ("10", "F"), ("10", "S"), ("10", "N"), ("10", "N")]
    )
    assert summary(findings) == [("exceedance", "opened", 90.0), ("exceedance", "closed", 10.0)]


def test_unreadable_values_are_ignored() -> None:
    engine = EnvRuleEngine(EnvRuleConfig(close_after_normal=1))
    assert feed(engine, [("abc", "N"), ("nan", "N"), ("inf", "N"), ("", "N")]) == []


def test_ph_below_the_low_limit() -> None:
    engine = EnvRuleEngine(EnvRuleConfig())
    readings = [("5.5", "N"), ("5.0", "N"), ("4.0", "N"), ("10", "N"), ("7", "N"), ("7", "N"), ("7", "N")]
    at = [T0 + timedelta(hours=n) for n in range(len(readings))]
    findings = [
        f
        for t, r in zip(at, readings, strict=True)
        for f in engine.process(packet(t, {"w01001": r}, st="32", mn="WATER1"), received_at=t)
    ]
    # 5.0 is 0.5 deeper than reported 5.5 (< 20 % of the limit 6); 4.0 is 1.5 deeper.
    assert summary(findings) == [
        ("exceedance", "opened", 5.5),
        ("exceedance", "updated", 4.0),
        ("exceedance", "closed", 7.0),
    ]
    assert findings[0].limit == 6 and findings[0].unit == "pH" and findings[-1].peak == 4.0


def test_limits_are_per_station_type() -> None:
    engine = EnvRuleEngine(EnvRuleConfig())
    at = T0
    assert engine.process(packet(at, {"a34004": ("500", "N")}, st="31"), received_at=at) == []
    assert engine.process(packet(at, {"w01018": ("500", "N")}, st="22"), received_at=at) == []


def test_real_2005_packet_with_old_cod_code_exceeds_the_discharge_limit() -> None:
    row = (CONFORMANCE / "hj212/packets.tsv").read_text(encoding="ascii").splitlines()[4]
    assert "011-Rtd=231.0" in row
    engine = EnvRuleEngine(EnvRuleConfig())
    findings = engine.process(parse_packet(row.split("\t")[2].encode()), received_at=T0)
    assert [(f.kind, f.status, f.pollutant, f.value, f.limit) for f in findings] == [
        ("exceedance", "opened", "w01018", 231.0, 50)
    ]
    assert findings[0].qn is None and findings[0].observed_at == datetime(2016, 8, 23, 16, 38, 17, tzinfo=UTC)


@pytest.mark.parametrize("cn", ["1062", "9014", "2021"])
def test_non_data_commands_give_no_finding_and_no_station(cn: str) -> None:
    engine = EnvRuleEngine(EnvRuleConfig())
    assert engine.process(packet(T0, {"a34004": ("999", "D")}, cn=cn), received_at=T0) == []
    assert engine.check_silence(T0 + timedelta(days=30)) == []
    assert engine.snapshot()["stations"] == {}


@pytest.mark.parametrize(
    ("cn", "config", "threshold"),
    [
        ("2051", EnvRuleConfig(), timedelta(hours=2)),  # minute interval unknown
        ("2061", EnvRuleConfig(), timedelta(hours=3)),  # 3 x hourly
        ("2031", EnvRuleConfig(), timedelta(days=3)),
        ("2011", EnvRuleConfig(expected_intervals={"AIR01": timedelta(minutes=10)}), timedelta(minutes=30)),
        ("2061", EnvRuleConfig(silence_thresholds={"AIR01": timedelta(minutes=7)}), timedelta(minutes=7)),
    ],
)
def test_silence_opens_after_the_threshold_once_and_closes_on_the_next_packet(
    cn: str, config: EnvRuleConfig, threshold: timedelta
) -> None:
    engine = EnvRuleEngine(config)
    engine.process(packet(T0, {"a34004": ("10", "N")}, cn=cn), received_at=T0)
    assert engine.check_silence(T0 + threshold) == []
    [opened] = engine.check_silence(T0 + threshold + timedelta(seconds=1))
    assert (opened.kind, opened.status, opened.pollutant, opened.mn) == ("silence", "opened", None, "AIR01")
    assert opened.qn == "20240501080000000" and opened.observed_at == T0 + threshold + timedelta(seconds=1)
    assert engine.check_silence(T0 + 10 * threshold) == []
    later = T0 + 11 * threshold
    [closed] = engine.process(packet(later, {"a34004": ("10", "N")}, cn=cn), received_at=later)
    assert (closed.kind, closed.status, closed.episode_id) == ("silence", "closed", opened.episode_id)


def test_hourly_data_shortens_the_threshold_of_a_daily_station() -> None:
    engine = EnvRuleEngine(EnvRuleConfig())
    engine.process(packet(T0, {}, cn="2031"), received_at=T0)
    engine.process(packet(T0, {}, cn="2061"), received_at=T0)
    assert len(engine.check_silence(T0 + timedelta(hours=3, seconds=1))) == 1


def test_episode_ids_are_reproducible_on_replay() -> None:
    readings = [("90", "N"), ("10", "D"), ("10", "N"), ("10", "N"), ("10", "N")]
    first, second = (
        feed(EnvRuleEngine(EnvRuleConfig()), readings),
        feed(EnvRuleEngine(EnvRuleConfig()), readings),
    )
    assert first == second and len({f.episode_id for f in first}) == 2


def test_findings_serialize_to_json() -> None:
    [finding] = feed(EnvRuleEngine(EnvRuleConfig()), [("90", "N")])
    data = json.loads(json.dumps(finding.to_dict()))
    assert data["observed_at"] == "2024-05-01T00:00:00+00:00" and data["value"] == 90.0


def test_restore_rejects_unknown_snapshot_version() -> None:
    with pytest.raises(ValueError):
        EnvRuleEngine.restore(EnvRuleConfig(), {"version": 99, "episodes": [], "stations": {}})


@pytest.mark.parametrize(
    "kwargs",
    [{"close_after_normal": 0}, {"update_fraction": -0.1}, {"silence_multiplier": 0}, {"value_fields": ()}],
)
def test_invalid_configuration_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        EnvRuleConfig(**kwargs)  # type: ignore[arg-type]


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        Limit()
    with pytest.raises(ValueError):
        Limit(low=9, high=6)
