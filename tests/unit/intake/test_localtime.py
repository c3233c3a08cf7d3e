from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake.domain.errors import Rejected
from intake.domain.localtime import LocalTime, parse_local_time

NOW = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)  # 12:00 in Beijing
EIGHT = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("text", "utc", "zone"),
    [
        ("2026-03-01 08:30:00", datetime(2026, 3, 1, 0, 30, tzinfo=UTC), "Asia/Shanghai"),
        ("20260301083000", datetime(2026, 3, 1, 0, 30, tzinfo=UTC), "Asia/Shanghai"),
        ("20260301083000223", datetime(2026, 3, 1, 0, 30, 0, 223000, tzinfo=UTC), "Asia/Shanghai"),
        ("2026-03-01T08:30:00+08:00", datetime(2026, 3, 1, 0, 30, tzinfo=UTC), "+08:00"),
        ("2026-03-01T00:30:00Z", datetime(2026, 3, 1, 0, 30, tzinfo=UTC), "UTC"),
        ("2026-02-28T20:30:00.5-04:00", datetime(2026, 3, 1, 0, 30, 0, 500000, tzinfo=UTC), "-04:00"),
        ("2026-03-01T08:30:00,25+0800", datetime(2026, 3, 1, 0, 30, 0, 250000, tzinfo=UTC), "+08:00"),
    ],
)
def test_accepted_forms_become_aware_utc_keeping_the_text(text, utc, zone):
    parsed = parse_local_time(text, now=NOW)
    assert parsed == LocalTime(utc=utc, text=text, zone=zone)
    assert parsed.utc.tzinfo is UTC


def test_surrounding_whitespace_is_ignored_but_kept_in_the_text():
    parsed = parse_local_time(" 20260301083000\r\n", now=NOW)
    assert parsed.utc == datetime(2026, 3, 1, 0, 30, tzinfo=UTC)
    assert parsed.text == " 20260301083000\r\n"


def test_the_hj212_standard_example_qn_parses_to_beijing_time():
    parsed = parse_local_time("20160801085857223", now=NOW)
    assert parsed.local() == datetime(2016, 8, 1, 8, 58, 57, 223000, tzinfo=EIGHT)


def test_china_summer_time_of_1988_is_applied():
    # 1988-04-17 02:00 to 1988-09-11 02:00 was UTC+9.
    assert parse_local_time("1988-07-01 12:00:00", now=NOW).utc == datetime(1988, 7, 1, 3, tzinfo=UTC)
    assert parse_local_time("1988-01-01 12:00:00", now=NOW).utc == datetime(1988, 1, 1, 4, tzinfo=UTC)


def test_a_local_time_skipped_by_summer_time_is_invalid():
    with pytest.raises(Rejected) as info:
        parse_local_time("1988-04-17 02:30:00", now=NOW)
    assert info.value.reason == "time.invalid"
    assert "1988-04-17 02:30:00" in info.value.detail


def test_a_repeated_local_time_is_the_first_summer_time_instance():
    assert parse_local_time("19880911013000", now=NOW).utc == datetime(1988, 9, 10, 16, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-03-01",
        "2026-03-01T08:30:00",  # ISO 8601 without an offset
        "2026-02-30 08:00:00",
        "20261301080000",
        "2026-03-01 24:00:00",
        "2026-03-01 08:30:60",
        "2026/03/01 08:30:00",
        "202603010830",
        "2026030108300012",
        "2026-03-01 08:30",
        "２０２６０３０１０８３０００",  # full-width digits
        "yesterday",
        "00010101000000",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
    ],
)
def test_other_texts_are_rejected_as_invalid_naming_the_text(text):
    with pytest.raises(Rejected) as info:
        parse_local_time(text, now=NOW)
    assert info.value.reason == "time.invalid"
    assert repr(text) in info.value.detail


def test_times_beyond_the_allowed_skew_into_the_future_are_rejected():
    assert parse_local_time("2026-03-01 12:05:00", now=NOW).utc == NOW + timedelta(minutes=5)
    with pytest.raises(Rejected) as info:
        parse_local_time("2026-03-01 12:05:01", now=NOW)
    assert info.value.reason == "time.future"
    assert "2026-03-01 12:05:01" in info.value.detail


def test_the_skew_is_configurable():
    parse_local_time("2026-03-01 13:00:00", now=NOW, max_future_skew=timedelta(hours=1))
    with pytest.raises(Rejected, match=r"time\.future"):
        parse_local_time("2026-03-01 12:00:01", now=NOW, max_future_skew=timedelta(0))


def test_now_must_be_aware():
    with pytest.raises(ValueError, match="aware"):
        parse_local_time("2026-03-01 08:00:00", now=datetime(2026, 3, 1, 4))


moments = st.datetimes(
    min_value=datetime(1992, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)


@given(moment=moments)
def test_every_form_of_one_instant_parses_to_that_instant(moment):
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    local = moment.astimezone(EIGHT)  # no summer time in China since 1991
    texts = [
        local.strftime("%Y-%m-%d %H:%M:%S"),
        local.strftime("%Y%m%d%H%M%S"),
        local.strftime("%Y%m%d%H%M%S") + f"{local.microsecond // 1000:03d}",
        moment.isoformat(),
        local.isoformat(),
    ]
    whole_seconds = moment.replace(microsecond=0)
    expected = [whole_seconds, whole_seconds, moment, moment, moment]
    far_future = datetime(2100, 1, 1, tzinfo=UTC)
    assert [parse_local_time(t, now=far_future).utc for t in texts] == expected


digits_and_separators = st.text(alphabet="0123456789-:T Z+.,", max_size=30)


@given(text=st.one_of(st.text(max_size=40), digits_and_separators))
def test_parsing_is_total_it_returns_or_rejects(text):
    try:
        parsed = parse_local_time(text, now=NOW)
    except Rejected as exc:
        assert exc.reason in {"time.invalid", "time.future"}
    else:
        assert parsed.utc.tzinfo is UTC and parsed.text == text
