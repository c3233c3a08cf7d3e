"""Parser for `legacy.party.v1`: 民情日记 / 走访 records from the party-building app (UTF-8 JSON).

Contract: contracts/legacy/party.v1.md and party.v1.schema.json; this module implements the schema in
code (one pass, no schema engine on the hot path) plus the rules the schema cannot state. `parse_party`
is pure and total: for any bytes it returns a `PartyRecord` or raises `Rejected` with a `party.*`
reason. Refusal details name the key and the rule but never echo the reporter's name or phone.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Final, Literal

import msgspec

from intake.domain.errors import Rejected
from intake.domain.feeds.safety.record import Reporter
from intake.domain.localtime import beijing_text_to_utc

__all__ = ["MAX_BYTES", "PARTY_EVENT_TYPES", "REPORTER_ROLES", "PartyPosition", "PartyRecord", "parse_party"]

MAX_BYTES: Final = 65_536

PARTY_EVENT_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "MQ01": "民生诉求",
        "MQ02": "矛盾调解",
        "MQ03": "安全隐患",
        "MQ04": "环境卫生",
        "MQ05": "火情",
        "MQ06": "汛情积水",
        "MQ07": "困难帮扶及养老",
        "MQ08": "治安情况",
        "MQ09": "其他",
    }
)
"""sjlx 事件类型 code to name. A well-formed code outside it still parses; the crosswalk quarantines it."""

REPORTER_ROLES: Final = ("党员", "志愿者")
"""dyzt: whether the reporter is a party member or a volunteer."""

_REQUIRED: Final = ("rjbh", "sjbt", "sjnr", "sjlx", "sbsj", "dz", "sbr", "lxdh", "dyzt")
_KNOWN: Final = frozenset((*_REQUIRED, "fssj", "jd", "wd", "wgbm", "tp"))
# [0-9], not \d: \d also matches full-width and other Unicode digits, which int() and float() accept.
_SOURCE_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
_EVENT_TYPE = re.compile(r"MQ[0-9]{2}")
_TIME = re.compile(r"20[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])([01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]")
_PHONE = re.compile(r"1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8}")
_GRID_CODE = re.compile(r"[0-9]{15}")
_PHOTO_URL = re.compile(r"https?://\S+")
_LON_TEXT = re.compile(r"(7[3-9]|[89][0-9]|1[0-2][0-9]|13[0-5])(\.[0-9]{1,15})?")
_LAT_TEXT = re.compile(r"([3-9]|[1-4][0-9]|5[0-3])(\.[0-9]{1,15})?")
_LON_RANGE: Final = (73.0, 136.0)
_LAT_RANGE: Final = (3.0, 54.0)
# The Baidu SDK reports Double.MIN_VALUE (4.9E-324) when locating failed; the app also sends 0 or "".
_NOT_LOCATED_TEXT: Final = frozenset(("", "0", "4.9E-324"))
_NOT_LOCATED_NUMBER: Final = frozenset((0.0, 5e-324))
_MAX_INT_DIGITS: Final = 19
_MAX_PHOTOS: Final = 9
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# What only the standard library's reading of a document can judge exactly (see `_fast_load`): an
# integer of more than 19 digits (where it stands among the other faults), or nesting deep enough to
# reach Python's recursion limit.
_INT_LIMIT: Final = 10**_MAX_INT_DIGITS
_MAX_FAST_BRACKETS: Final = 64
_JSON = msgspec.json.Decoder()


class PartyPosition(msgspec.Struct, frozen=True):
    """A point exactly as the app gave it, in BD-09; the mapper converts it to WGS-84."""

    lon: float
    lat: float
    system: Literal["BD09"] = "BD09"


class PartyRecord(msgspec.Struct, frozen=True):
    """One validated record. `extra` holds unknown keys as parsed (JSON values; do not mutate).

    A frozen msgspec Struct rather than a frozen dataclass: built in C, not through a
    `object.__setattr__` per field (about 4 µs less per record)."""

    source_id: str
    title: str
    content: str
    event_type_code: str
    reported_text: str
    reported_at: datetime
    occurred_text: str | None
    occurred_at: datetime | None
    position: PartyPosition | None
    address: str
    reporter: Reporter
    reporter_role: str
    grid_code: str | None
    photo_urls: tuple[str, ...]
    extra: Mapping[str, object]

    @property
    def event_type_name(self) -> str | None:
        """The code's name in `PARTY_EVENT_TYPES`, None for a code the table does not know (yet)."""
        return PARTY_EVENT_TYPES.get(self.event_type_code)


def parse_party(raw: bytes, *, max_bytes: int = MAX_BYTES) -> PartyRecord:
    """Decode, parse and validate one record, or raise `Rejected` (reasons in party.v1.md)."""
    if len(raw) > max_bytes:
        raise Rejected("party.too_large", f"{len(raw)} bytes, limit {max_bytes}")
    text = _decode(raw)
    document = _fast_load(raw)
    if document is None:
        loaded = _load(text)
        if not isinstance(loaded, dict):
            raise Rejected("party.invalid_value", f"$ must be a JSON object, found {_json_type(loaded)}")
        _refuse_unrepresentable(loaded)
        document = loaded
    for key in _REQUIRED:
        if key not in document:
            raise Rejected("party.missing_field", f"{key} is required")
    source_id = _string(document, "rjbh")
    if not _SOURCE_ID.fullmatch(source_id):
        raise Rejected("party.invalid_value", f"rjbh {source_id[:80]!r} is not 1-64 of [0-9A-Za-z_-]")
    event_type = _string(document, "sjlx")
    if not _EVENT_TYPE.fullmatch(event_type):
        raise Rejected("party.invalid_value", f"sjlx {event_type[:80]!r} is not MQ followed by 2 digits")
    reported_text = _string(document, "sbsj")
    occurred_text = _optional_string(document, "fssj")
    role = _string(document, "dyzt")
    if role not in REPORTER_ROLES:
        raise Rejected("party.invalid_value", f"dyzt {role[:80]!r} is not 党员 or 志愿者")
    return PartyRecord(
        source_id=source_id,
        title=_text(document, "sjbt", 100),
        content=_text(document, "sjnr", 2000),
        event_type_code=event_type,
        reported_text=reported_text,
        reported_at=_beijing_to_utc(reported_text, "sbsj"),
        occurred_text=occurred_text,
        occurred_at=None if occurred_text is None else _beijing_to_utc(occurred_text, "fssj"),
        position=_position(document),
        address=_text(document, "dz", 200),
        reporter=_reporter(document),
        reporter_role=role,
        grid_code=_grid_code(document),
        photo_urls=_photo_urls(document),
        extra=MappingProxyType({key: value for key, value in document.items() if key not in _KNOWN}),
    )


def _decode(raw: bytes) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        raise Rejected(
            "party.encoding", "document starts with a UTF-8 byte-order mark; the contract forbids one"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Rejected(
            "party.encoding", f"byte 0x{raw[error.start]:02X} at offset {error.start} is not valid UTF-8"
        ) from None


def _fast_load(raw: bytes) -> dict[str, object] | None:
    """The document read by msgspec's C decoder (~1 µs) when that reading is provably the one `_load`
    gives and passes `_refuse_unrepresentable`; None when it is not, and `_load` must judge.

    msgspec refuses what `_refuse_unrepresentable` refuses (lone surrogates, numbers beyond a double)
    but does not see duplicate keys, long integers or Python's nesting limit. Duplicates: every key in
    the text is followed by a colon, so the text's colons are at least its keys, which are at least the
    keys read; equal counts leave no room for a key given twice. Without \\u escapes (the one way to
    write a colon that is not one), the text's colons are its keys plus the colons inside its strings,
    so a photo URL's colon is counted in the strings read; a key given twice is read once, and its own
    colon and those of its value are then missing from the count."""
    if raw.count(b"[") + raw.count(b"{") > _MAX_FAST_BRACKETS:
        return None
    try:
        document = _JSON.decode(raw)
    except msgspec.DecodeError:
        return None
    if not isinstance(document, dict):
        return None
    read = _colons_read(document)
    colons = raw.count(b":")
    if read is not None and (colons == len(document) or (b"\\u" not in raw and colons == read)):
        return document
    return None


def _colons_read(value: object) -> int | None:
    """The keys of every object in `value` plus the colons inside every string, key or value; None
    when an integer has more than 19 digits."""
    if isinstance(value, str):
        return value.count(":")
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return 0
    if isinstance(value, int):
        return 0 if -_INT_LIMIT < value < _INT_LIMIT else None
    total = 0
    items: list[object] = []
    if isinstance(value, dict):
        keys: list[str] = list(value)
        total = sum(1 + key.count(":") for key in keys)
        items = list(value.values())
    elif isinstance(value, list):
        items = value
    for item in items:
        count = _colons_read(item)
        if count is None:
            return None
        total += count
    return total


def _load(text: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_constant, parse_int=_integer)
    except json.JSONDecodeError as error:
        raise Rejected(
            "party.json_malformed",
            f"{error.msg} at line {error.lineno} column {error.colno} (char {error.pos})",
        ) from None
    except RecursionError:
        raise Rejected("party.json_malformed", "arrays or objects nested too deeply") from None


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise Rejected("party.duplicate_key", f"key {key[:80]!r} appears more than once in one object")
        result[key] = value
    return result


def _constant(name: str) -> object:
    raise Rejected("party.json_malformed", f"{name} is not a JSON value")


def _integer(text: str) -> object:
    # Python's int() refuses beyond 4300 digits with a ValueError; and no consumer stores more than int64.
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise Rejected("party.invalid_value", f"integer of more than {_MAX_INT_DIGITS} digits")
    return int(text)


def _refuse_unrepresentable(document: dict[str, object]) -> None:
    """Refuse what is valid JSON syntax but cannot be carried on: lone surrogate escapes (not text, not
    UTF-8-encodable) and numbers beyond a double's range (Python reads them as infinity)."""
    pending: list[object] = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str) and _SURROGATE.search(value):
            raise Rejected("party.invalid_value", "a string holds a lone UTF-16 surrogate escape")
        elif isinstance(value, float) and not math.isfinite(value):
            raise Rejected("party.invalid_value", "a number is too large for a double")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _string(document: Mapping[str, object], key: str) -> str:
    value = document[key]
    if not isinstance(value, str):
        raise Rejected("party.invalid_value", f"{key} must be a string, found {_json_type(value)}")
    return value


def _optional_string(document: Mapping[str, object], key: str) -> str | None:
    return None if document.get(key) is None else _string(document, key)


def _text(document: Mapping[str, object], key: str, max_chars: int) -> str:
    value = _string(document, key)
    if not value.strip():
        raise Rejected("party.invalid_value", f"{key} is blank")
    if len(value) > max_chars:
        raise Rejected("party.invalid_value", f"{key} has {len(value)} characters, at most {max_chars}")
    return value.strip()


def _beijing_to_utc(text: str, key: str) -> datetime:
    """`yyyyMMddHHmmss` in Beijing time as an aware UTC instant (no daylight saving since 1991)."""
    if not _TIME.fullmatch(text):
        raise Rejected("party.invalid_value", f"{key} {text[:80]!r} is not yyyyMMddHHmmss (years 2000-2099)")
    try:  # the pattern allows only digits, and years 2000-2099: the fixed +08:00 applies
        return beijing_text_to_utc(text)
    except ValueError:
        raise Rejected("party.invalid_value", f"{key} {text[:80]!r} is not a real date and time") from None


def _position(document: Mapping[str, object]) -> PartyPosition | None:
    if "jd" not in document and "wd" not in document:
        return None
    for key, other in (("jd", "wd"), ("wd", "jd")):
        if key not in document:
            raise Rejected("party.missing_field", f"{key} is required when {other} is given")
    lon = _coordinate(document["jd"], "jd", _LON_TEXT, _LON_RANGE)
    lat = _coordinate(document["wd"], "wd", _LAT_TEXT, _LAT_RANGE)
    if lon is None and lat is None:
        return None
    if lon is None or lat is None:
        raise Rejected("party.invalid_value", "jd and wd must both be coordinates or both be 'not located'")
    return PartyPosition(lon=lon, lat=lat)


def _coordinate(
    value: object, key: str, pattern: re.Pattern[str], bounds: tuple[float, float]
) -> float | None:
    """Degrees, or None for the app's "not located" values; numbers and numeric strings both arrive."""
    low, high = bounds
    if isinstance(value, str):
        if value in _NOT_LOCATED_TEXT:
            return None
        if not pattern.fullmatch(value):
            raise Rejected(
                "party.invalid_value", f"{key} {value[:80]!r} is not decimal degrees in [{low}, {high})"
            )
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected(
            "party.invalid_value", f"{key} must be a number or a numeric string, found {_json_type(value)}"
        )
    if value in _NOT_LOCATED_NUMBER:
        return None
    if not low <= value < high:
        raise Rejected("party.invalid_value", f"{key} {value} is outside China's range [{low}, {high})")
    return float(value)


def _reporter(document: Mapping[str, object]) -> Reporter:
    name = _text(document, "sbr", 50)
    phone = _string(document, "lxdh")
    if not _PHONE.fullmatch(phone):
        raise Rejected(
            "party.invalid_value", f"lxdh ({len(phone)} characters) is not a mainland phone number"
        )
    return Reporter(name=name, phone=phone)


def _grid_code(document: Mapping[str, object]) -> str | None:
    grid_code = _optional_string(document, "wgbm")
    if grid_code is not None and not _GRID_CODE.fullmatch(grid_code):
        raise Rejected("party.invalid_value", f"wgbm {grid_code[:80]!r} is not 15 digits")
    return grid_code


def _photo_urls(document: Mapping[str, object]) -> tuple[str, ...]:
    photos = document.get("tp")
    if photos is None:
        return ()
    if not isinstance(photos, list):
        raise Rejected("party.invalid_value", f"tp must be an array, found {_json_type(photos)}")
    if len(photos) > _MAX_PHOTOS:
        raise Rejected("party.invalid_value", f"tp has {len(photos)} photos, at most {_MAX_PHOTOS}")
    for index, url in enumerate(photos):
        if not isinstance(url, str) or len(url) > 1024 or not _PHOTO_URL.fullmatch(url):
            raise Rejected(
                "party.invalid_value", f"tp[{index}] is not an http(s) URL of at most 1024 characters"
            )
    return tuple(photos)
