"""Legacy time texts to aware UTC datetimes, keeping the text as received.

Accepted forms (after stripping surrounding whitespace):
- ``yyyy-MM-dd HH:mm:ss``   local time (public-safety feed);
- ``yyyyMMddHHmmss``        local time (party-building app, HJ 212 ``DataTime``);
- ``yyyyMMddHHmmsszzz``     local time with milliseconds (HJ 212 ``QN``, millisecond ``DataTime``);
- ISO 8601 with a UTC offset or ``Z`` (CAP, Open311), e.g. ``2026-03-01T08:00:00+08:00``.
Local times are in ``zone`` (default Asia/Shanghai, through zoneinfo, which knows China's 1986-1991
summer time). An ISO 8601 text without an offset is refused: it is ambiguous, and the feeds that use
ISO 8601 are required to send one.

Errors: ``Rejected("time.invalid")`` for anything else, including dates that do not exist and local
times skipped by a summer-time change; ``Rejected("time.future")`` for a time more than
``max_future_skew`` after ``now`` (a device clock that runs ahead would otherwise open cases "in the
future" and break deadlines). A local time repeated by a summer-time change is taken as the first
(summer-time) instance.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from intake.domain.errors import Rejected

__all__ = [
    "DEFAULT_MAX_FUTURE_SKEW",
    "LOCAL_ZONE",
    "LocalTime",
    "beijing_text_to_utc",
    "beijing_to_utc",
    "parse_local_time",
]

LOCAL_ZONE = "Asia/Shanghai"
DEFAULT_MAX_FUTURE_SKEW = timedelta(minutes=5)

_DASHED = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})", re.ASCII)
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{3})?", re.ASCII)
# fromisoformat alone would also take week dates, bare dates and 'T'-less forms; require a full
# date-time so that "2026-03-01" is not silently midnight.
_ISO = re.compile(
    r"\d{4}-?\d{2}-?\d{2}[T ]\d{2}(:?\d{2}(:?\d{2}([.,]\d+)?)?)?(Z|z|[+-]\d{2}(:?\d{2})?)?", re.ASCII
)


class LocalTime(msgspec.Struct, frozen=True):
    """An instant (``utc``, aware, tzinfo UTC), the ``text`` it was read from, and the ``zone`` that
    text was interpreted in ("UTC" or e.g. "+08:00" for ISO 8601 texts that carried an offset)."""

    utc: datetime
    text: str
    zone: str

    def local(self) -> datetime:
        """The instant as a wall-clock time in Asia/Shanghai."""
        return self.utc.astimezone(ZoneInfo(LOCAL_ZONE))


def parse_local_time(
    text: str,
    *,
    now: datetime,
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
    zone: str = LOCAL_ZONE,
) -> LocalTime:
    """Parse one time text; see the module docstring for the forms and reasons.

    ``now`` must be aware (ValueError otherwise: a programming error, not bad data).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    candidate = text.strip()
    if (match := _DASHED.fullmatch(candidate)) or (match := _COMPACT.fullmatch(candidate)):
        utc, used_zone = _from_local(text, match.groups(), zone), zone
    elif _ISO.fullmatch(candidate):
        utc, used_zone = _from_iso(text, candidate)
    else:
        raise Rejected("time.invalid", f"{text!r} matches none of the accepted time formats")
    if utc - now > max_future_skew:
        raise Rejected(
            "time.future",
            f"{text!r} is {utc - now} after now ({now.isoformat()}), more than {max_future_skew} allowed",
        )
    return LocalTime(utc=utc, text=text, zone=used_zone)


# China has kept UTC+8 all year since its last summer time ended in September 1991: a local time in
# Asia/Shanghai from 1992 on is a fixed offset, read without the zone database (4.6 -> 1.2 µs).
_FIXED_SINCE = 1992
_BEIJING_OFFSET = timedelta(hours=8)


def beijing_to_utc(
    year: int, month: int, day: int, hour: int, minute: int, second: int, microsecond: int = 0
) -> datetime:
    """A wall-clock time in Asia/Shanghai from 1992 on as an aware UTC instant; ValueError for a date
    or time that does not exist (as ``datetime`` raises it)."""
    if year < _FIXED_SINCE:
        raise ValueError(f"year {year} is before {_FIXED_SINCE}: the zone database decides it")
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC) - _BEIJING_OFFSET


def beijing_text_to_utc(text: str) -> datetime:
    """`yyyyMMddHHmmss` or `yyyy-MM-dd HH:mm:ss` (the caller has matched one of them: digits where
    digits go) in Asia/Shanghai from 1992 on as an aware UTC instant; ValueError as `beijing_to_utc`.
    Read by position, the feeds' hot path: no regular expression, no zone database."""
    if len(text) == 14:
        return beijing_to_utc(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[8:10]),
            int(text[10:12]),
            int(text[12:14]),
        )
    return beijing_to_utc(
        int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), int(text[14:16]), int(text[17:19])
    )


def _from_local(text: str, fields: tuple[str | None, ...], zone: str) -> datetime:
    # The dashed form has no millisecond group: pad with None, then cut to seven fields.
    year, month, day, hour, minute, second, millis = (int(f) if f else 0 for f in (*fields, None)[:7])
    if zone == LOCAL_ZONE and year >= _FIXED_SINCE:
        try:
            return beijing_to_utc(year, month, day, hour, minute, second, millis * 1000)
        except ValueError as exc:
            raise Rejected("time.invalid", f"{text!r} is not a valid date and time: {exc}") from exc
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {zone!r}") from exc
    try:
        wall = datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=tz)
    except ValueError as exc:
        raise Rejected("time.invalid", f"{text!r} is not a valid date and time: {exc}") from exc
    utc = _to_utc(text, wall)
    # A wall time inside a spring-forward gap maps to an instant whose wall time differs.
    if utc.astimezone(tz).replace(tzinfo=None) != wall.replace(tzinfo=None):
        raise Rejected("time.invalid", f"{text!r} does not exist in {zone} (skipped by a summer-time change)")
    return utc


def _from_iso(text: str, candidate: str) -> tuple[datetime, str]:
    try:
        parsed = datetime.fromisoformat(candidate.replace(",", "."))
    except ValueError as exc:
        raise Rejected("time.invalid", f"{text!r} is not a valid ISO 8601 date-time: {exc}") from exc
    offset = parsed.utcoffset()
    if offset is None:
        raise Rejected("time.invalid", f"{text!r} is ISO 8601 without a UTC offset; the zone is ambiguous")
    return _to_utc(text, parsed), _offset_name(offset)


def _to_utc(text: str, moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:  # year 1 or 9999 pushed past the calendar by the offset
        raise Rejected("time.invalid", f"{text!r} lies outside the representable years") from exc


def _offset_name(offset: timedelta) -> str:
    if not offset:
        return "UTC"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
