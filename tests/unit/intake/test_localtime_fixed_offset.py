"""Local times in Asia/Shanghai from 1992 on are read at the fixed +08:00 without the zone database:
the instant is the one the zone database gives, for every form and any date of those years; before
1992 (China's summer times 1986-1991) the zone database still decides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from intake.domain.localtime import parse_local_time

FAR = datetime(9999, 1, 1, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


@given(st.datetimes(min_value=datetime(1992, 1, 1), max_value=datetime(2200, 12, 31)))
def test_the_fixed_offset_gives_the_zone_databases_instant(wall: datetime) -> None:
    wall = wall.replace(microsecond=wall.microsecond // 1000 * 1000)
    expected = wall.replace(tzinfo=SHANGHAI).astimezone(UTC)
    texts = [
        wall.strftime("%Y-%m-%d %H:%M:%S"),
        wall.strftime("%Y%m%d%H%M%S"),
        wall.strftime("%Y%m%d%H%M%S") + f"{wall.microsecond // 1000:03d}",
    ]
    for i, text in enumerate(texts):
        got = parse_local_time(text, now=FAR)
        want = expected if i == 2 else expected.replace(microsecond=0)
        assert got.utc == want and got.utc.utcoffset() == timedelta(0), text


def test_summer_time_before_1992_still_comes_from_the_zone_database() -> None:
    # 1988-07-01 12:00 in Beijing was UTC+9 (summer time)
    assert parse_local_time("1988-07-01 12:00:00", now=FAR).utc == datetime(1988, 7, 1, 3, 0, tzinfo=UTC)


# The party and safety feeds read their own fixed forms (years 2000-2099) the same way: the instant
# strptime and the zone database give, and a refusal exactly where strptime refuses.
@given(
    st.from_regex(
        r"20[0-9]{2}(0[0-9]|1[0-3])(0[0-9]|[123][0-9])([01][0-9]|2[0-4])[0-6][0-9][0-6][0-9]", fullmatch=True
    )
)
def test_feed_times_match_strptime_and_the_zone_database(digits: str) -> None:
    from intake.domain.errors import Rejected
    from intake.domain.feeds.party.record import _beijing_to_utc as party_time
    from intake.domain.feeds.safety.record import _beijing_to_utc as safety_time

    dashed = f"{digits[:4]}-{digits[4:6]}-{digits[6:8]} {digits[8:10]}:{digits[10:12]}:{digits[12:14]}"
    try:
        expected: datetime | None = (
            datetime.strptime(digits, "%Y%m%d%H%M%S").replace(tzinfo=SHANGHAI).astimezone(UTC)
        )
    except ValueError:
        expected = None
    for parse, text in ((party_time, digits), (safety_time, dashed)):
        try:
            got: datetime | None = parse(text, "t")
        except Rejected as e:
            assert e.reason.endswith(".invalid_value"), e.reason
            got = None
        assert got == expected, text
        assert got is None or got.utcoffset() == timedelta(0)
