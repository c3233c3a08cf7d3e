import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake.domain.errors import Quarantined
from intake.domain.severity import Severity, from_cap, from_china_level, from_exceedance_ratio

CAP_SEVERITIES = ["Extreme", "Severe", "Moderate", "Minor", "Unknown"]
CAP_URGENCIES = ["Immediate", "Expected", "Future", "Past", "Unknown"]


def test_levels_are_ordered_most_severe_first_with_official_names_and_colours():
    assert [(s.value, s.roman, s.zh, s.color, s.color_zh) for s in Severity] == [
        (1, "I", "特别重大", "red", "红"),
        (2, "II", "重大", "orange", "橙"),
        (3, "III", "较大", "yellow", "黄"),
        (4, "IV", "一般", "blue", "蓝"),
    ]
    assert min(Severity) is Severity.I
    assert all(s.en for s in Severity)


@pytest.mark.parametrize(
    ("severity", "urgency", "expected"),
    [
        ("Extreme", "Expected", Severity.I),
        ("Severe", "Future", Severity.II),
        ("Moderate", "Past", Severity.III),
        ("Minor", "Expected", Severity.IV),
        ("Unknown", "Unknown", Severity.IV),
        ("Extreme", "Immediate", Severity.I),
        ("Severe", "Immediate", Severity.I),
        ("Moderate", "Immediate", Severity.II),
        ("Minor", "Immediate", Severity.III),
        ("Unknown", "Immediate", Severity.III),
        ("severe ", " immediate", Severity.I),
        ("Catastrophic", "Expected", Severity.IV),
    ],
)
def test_from_cap(severity, urgency, expected):
    assert from_cap(severity, urgency) is expected


@given(severity=st.one_of(st.sampled_from(CAP_SEVERITIES), st.text()), urgency=st.text())
def test_from_cap_is_total_and_immediate_raises_by_at_most_one_level(severity, urgency):
    plain = from_cap(severity, "Expected")
    assert isinstance(plain, Severity)
    assert from_cap(severity, "Immediate") == max(Severity.I, plain - 1)
    assert from_cap(severity, urgency) in (plain, max(Severity.I, plain - 1))


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (
            [
                "I",
                "Ⅰ",
                "1",
                "一级",
                "Ⅰ级",
                "红",
                "红色",
                "红色预警",
                "RED",
                "特别重大",
                "特别重大事件",
                "一级响应",
            ],
            Severity.I,
        ),
        (["II", "Ⅱ", "2", "二级", "ii", "橙", "橙色预警", "orange", "重大", "Level II"], Severity.II),
        (["III", "Ⅲ", "3", "三级", "黄", "黄色", "Yellow", "较大", "Ⅲ级响应", "３"], Severity.III),
        (["IV", "Ⅳ", "4", "四级", "蓝", "蓝色预警", "blue", "一般", " 一般 ", "Ⅳ级"], Severity.IV),
    ],
)
def test_from_china_level_accepts_every_official_spelling(texts, expected):
    assert [from_china_level(t) for t in texts] == [expected] * len(texts)


@pytest.mark.parametrize("text", ["", "V", "5", "0", "紫", "级", "预警", "特大", "high", "I II"])
def test_from_china_level_quarantines_what_it_does_not_know(text):
    with pytest.raises(Quarantined) as info:
        from_china_level(text)
    assert info.value.reason == "severity.unrecognized_level"
    assert repr(text) in info.value.detail


@given(text=st.text(max_size=12))
def test_from_china_level_returns_a_level_or_quarantines_nothing_else(text):
    try:
        assert isinstance(from_china_level(text), Severity)
    except Quarantined as exc:
        assert exc.reason == "severity.unrecognized_level"


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [
        (0.0, Severity.IV),
        (1.0, Severity.IV),
        (1.99, Severity.IV),
        (2.0, Severity.III),
        (2.99, Severity.III),
        (3.0, Severity.II),
        (1000.0, Severity.II),
        (math.inf, Severity.II),
        (-1.0, Severity.IV),
    ],
)
def test_from_exceedance_ratio(ratio, expected):
    assert from_exceedance_ratio(ratio) is expected


@given(a=st.floats(allow_nan=False), b=st.floats(allow_nan=False))
def test_from_exceedance_ratio_is_total_monotone_and_never_level_one(a, b):
    low, high = sorted((a, b))
    assert from_exceedance_ratio(high) <= from_exceedance_ratio(low)
    assert from_exceedance_ratio(a) is not Severity.I


def test_from_exceedance_ratio_refuses_nan():
    with pytest.raises(ValueError, match="NaN"):
        from_exceedance_ratio(math.nan)
