"""Parser for `legacy.safety.v1`: the 综治/平安 system's GBK-encoded XML event reports (事件信息).

Contract: contracts/legacy/safety.v1.md. `parse_safety` is pure and total: for any bytes it returns a
`SafetyRecord` or raises `Rejected` with a `safety.*` reason, never anything else. Refusal details
name the element and the rule broken but never echo the reporter's personal data.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Final, Literal
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException

from intake.domain.errors import Rejected
from intake.domain.localtime import beijing_text_to_utc
from intake.domain.xmldoc import parse_document

__all__ = [
    "HANDLING_STATUSES",
    "MAX_BYTES",
    "SAFETY_EVENT_TYPES",
    "SAFETY_LEVELS",
    "Reporter",
    "SafetyPosition",
    "SafetyRecord",
    "parse_safety",
]

MAX_BYTES: Final = 262_144

SAFETY_EVENT_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "0101": "矛盾纠纷",
        "0102": "邻里纠纷",
        "0103": "婚姻家庭纠纷",
        "0104": "劳资纠纷",
        "0105": "土地及征地拆迁纠纷",
        "0106": "物业纠纷",
        "0201": "治安隐患",
        "0202": "群体性事件苗头",
        "0203": "涉黄赌毒线索",
        "0204": "电信网络诈骗",
        "0301": "安全生产隐患",
        "0302": "消防安全隐患",
        "0303": "危险化学品隐患",
        "0304": "食品药品安全隐患",
        "0401": "重点人员动态",
        "0402": "社区矫正人员动态",
        "0403": "严重精神障碍患者动态",
        "0901": "其他事件",
    }
)
"""事件类型代码 to its name. A well-formed code outside it still parses: the crosswalk quarantines it."""

SAFETY_LEVELS: Final = ("一般", "较大", "重大", "特别重大")
"""事件等级, from level IV (一般) to level I (特别重大)."""

HANDLING_STATUSES: Final = ("待处置", "处置中", "已办结", "已上报")
"""处置状态 as the source reports it; 已上报 means escalated to a higher level."""

_ROOT: Final = "SJXX"
_CODECS: Final = {"GBK": "gbk", "GB18030": "gb18030"}
_BOMS: Final = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, b"\x84\x31\x95\x33")
_DECLARATION = re.compile(
    rb"<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*([\"'])1\.[01]\1"
    rb"[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*([\"'])([A-Za-z][A-Za-z0-9._-]{0,39})\2"
)
# [0-9], not \d: \d also matches full-width and other Unicode digits, which int() and float() accept.
_SOURCE_ID = re.compile(r"PA[0-9]{20}")
_TYPE_CODE = re.compile(r"[0-9]{4}")
_TIME = re.compile(r"20[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_DEGREES = re.compile(r"-?[0-9]{1,3}(\.[0-9]{1,15})?")
_GRID_CODE = re.compile(r"[0-9]{15}")
_PHONE = re.compile(r"1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8}")
_ID_NUMBER = re.compile(r"[0-9]{17}[0-9X]")
_LON_RANGE: Final = (73.0, 136.0)
_LAT_RANGE: Final = (3.0, 54.0)


@dataclass(frozen=True)
class Reporter:
    """上报人: personal data (PIPL). `repr` masks every field so that a logged record leaks none of it."""

    name: str
    phone: str
    id_number: str | None = None

    def __repr__(self) -> str:
        id_number = None if self.id_number is None else _mask(self.id_number, keep_head=1, keep_tail=1)
        return (
            f"Reporter(name={_mask(self.name, keep_head=1, keep_tail=0)!r}, "
            f"phone={_mask(self.phone, keep_head=3, keep_tail=4)!r}, id_number={id_number!r})"
        )


@dataclass(frozen=True)
class SafetyPosition:
    """A point exactly as the source gave it, in GCJ-02; the mapper converts it to WGS-84."""

    lon: float
    lat: float
    system: Literal["GCJ02"] = "GCJ02"


@dataclass(frozen=True)
class SafetyRecord:
    """One 事件信息 document, validated. Times are kept as the source's text and as UTC instants."""

    source_id: str
    event_type_code: str
    level: str
    title: str
    description: str
    occurred_text: str
    occurred_at: datetime
    reported_text: str
    reported_at: datetime
    address: str
    position: SafetyPosition | None
    grid_code: str | None
    reporter: Reporter
    handling_status: str
    related_id: str | None
    declared_encoding: str
    extra: Mapping[str, str]

    @property
    def event_type_name(self) -> str | None:
        """The code's name in `SAFETY_EVENT_TYPES`, None for a code the table does not know (yet)."""
        return SAFETY_EVENT_TYPES.get(self.event_type_code)


def parse_safety(raw: bytes, *, max_bytes: int = MAX_BYTES) -> SafetyRecord:
    """Decode, parse and validate one document, or raise `Rejected` (reasons in safety.v1.md)."""
    if len(raw) > max_bytes:
        raise Rejected("safety.too_large", f"{len(raw)} bytes, limit {max_bytes}")
    text, declared = _decode(raw)
    root = _parse_xml(text)
    if root.tag != _ROOT:
        raise Rejected("safety.unexpected_root", f"root element is <{root.tag}>, expected <{_ROOT}>")
    top = _Children(root, "")
    reporter = _Children(top.container("SBR"), "SBR/")
    source_id = top.matching("SJBH", _SOURCE_ID, "PA followed by 20 digits")
    related_id = top.optional("GLSJBH")
    if related_id is not None:
        _check(related_id, _SOURCE_ID, "GLSJBH", "PA followed by 20 digits")
        if related_id == source_id:
            raise Rejected("safety.invalid_value", "GLSJBH equals SJBH: an event cannot follow up itself")
    occurred_text = top.required("FSSJ")
    reported_text = top.required("SBSJ")
    grid_code = top.optional("SSWGBM")
    if grid_code is not None:
        _check(grid_code, _GRID_CODE, "SSWGBM", "15 digits")
    return SafetyRecord(
        source_id=source_id,
        event_type_code=top.matching("SJLXDM", _TYPE_CODE, "4 digits"),
        level=top.one_of("SJDJ", SAFETY_LEVELS),
        title=top.bounded("BT", 100),
        description=top.bounded("MS", 4000),
        occurred_text=occurred_text,
        occurred_at=_beijing_to_utc(occurred_text, "FSSJ"),
        reported_text=reported_text,
        reported_at=_beijing_to_utc(reported_text, "SBSJ"),
        address=top.bounded("FSDZ", 200),
        position=_position(top.optional("JD"), top.optional("WD")),
        grid_code=grid_code,
        reporter=_reporter(reporter),
        handling_status=top.one_of("CZZT", HANDLING_STATUSES),
        related_id=related_id,
        declared_encoding=declared,
        extra=MappingProxyType({**top.unknown(), **reporter.unknown()}),
    )


def _decode(raw: bytes) -> tuple[str, str]:
    if raw.startswith(_BOMS):
        raise Rejected("safety.encoding", "document starts with a byte-order mark; the contract forbids one")
    declaration = _DECLARATION.match(raw)
    if declaration is None:
        raise Rejected(
            "safety.encoding", 'document must begin with <?xml version="1.0" encoding="GBK"?> at byte 0'
        )
    label = declaration.group(3).decode("ascii").upper()
    codec = _CODECS.get(label)
    if codec is None:
        raise Rejected("safety.encoding", f"declared encoding {label!r}; the contract allows GBK or GB18030")
    if not raw.isascii() and _is_utf8(raw):
        raise Rejected("safety.encoding", f"bytes are UTF-8 although the declaration says {label}")
    try:
        return raw.decode(codec), label
    except UnicodeDecodeError as error:
        raise Rejected(
            "safety.encoding", f"byte 0x{raw[error.start]:02X} at offset {error.start} is not valid {label}"
        ) from None


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _parse_xml(text: str) -> Element:
    try:
        root = parse_document(text)
    except DefusedXmlException as error:
        raise Rejected(
            "safety.forbidden_xml", f"{type(error).__name__}: DTDs and entities are refused"
        ) from None
    except ParseError as error:
        raise Rejected("safety.xml_malformed", str(error)) from None
    return root


class _Children:
    """The child elements of one element, by tag, each at most once; reads them by the contract's rules."""

    def __init__(self, parent: Element, prefix: str) -> None:
        self._prefix = prefix
        self._by_tag: dict[str, Element] = {}
        for child in parent:
            if child.tag in self._by_tag:
                raise Rejected("safety.duplicate_field", f"<{prefix}{child.tag}> appears more than once")
            self._by_tag[child.tag] = child
        self._known: set[str] = set()

    def container(self, tag: str) -> Element:
        self._known.add(tag)
        element = self._by_tag.get(tag)
        if element is None:
            raise Rejected("safety.missing_field", f"{self._prefix}{tag} is required")
        return element

    def optional(self, tag: str) -> str | None:
        self._known.add(tag)
        element = self._by_tag.get(tag)
        if element is None:
            return None
        if len(element):
            raise Rejected(
                "safety.invalid_value", f"{self._prefix}{tag} must hold text only, found <{element[0].tag}>"
            )
        return (element.text or "").strip() or None

    def required(self, tag: str) -> str:
        value = self.optional(tag)
        if value is None:
            raise Rejected("safety.missing_field", f"{self._prefix}{tag} is required")
        return value

    def matching(self, tag: str, pattern: re.Pattern[str], rule: str) -> str:
        value = self.required(tag)
        _check(value, pattern, self._prefix + tag, rule)
        return value

    def bounded(self, tag: str, max_chars: int) -> str:
        value = self.required(tag)
        if len(value) > max_chars:
            raise Rejected(
                "safety.invalid_value",
                f"{self._prefix}{tag} has {len(value)} characters, at most {max_chars}",
            )
        return value

    def one_of(self, tag: str, allowed: tuple[str, ...]) -> str:
        value = self.required(tag)
        if value not in allowed:
            raise Rejected(
                "safety.invalid_value",
                f"{self._prefix}{tag} {value[:80]!r} is not one of {'/'.join(allowed)}",
            )
        return value

    def unknown(self) -> dict[str, str]:
        """Text of the children no rule has read, keyed by path; call after every known read."""
        return {
            self._prefix + tag: "".join(element.itertext()).strip()
            for tag, element in self._by_tag.items()
            if tag not in self._known
        }


def _check(value: str, pattern: re.Pattern[str], path: str, rule: str) -> None:
    if not pattern.fullmatch(value):
        raise Rejected("safety.invalid_value", f"{path} {value[:80]!r} is not {rule}")


def _beijing_to_utc(text: str, path: str) -> datetime:
    """`yyyy-MM-dd HH:mm:ss` in Beijing time as an aware UTC instant (China keeps no daylight saving)."""
    if not _TIME.fullmatch(text):
        raise Rejected(
            "safety.invalid_value", f"{path} {text[:80]!r} is not yyyy-MM-dd HH:mm:ss (years 2000-2099)"
        )
    try:  # the pattern allows only digits, and years 2000-2099: the fixed +08:00 applies
        return beijing_text_to_utc(text)
    except ValueError:
        raise Rejected("safety.invalid_value", f"{path} {text[:80]!r} is not a real date and time") from None


def _position(lon_text: str | None, lat_text: str | None) -> SafetyPosition | None:
    if lon_text is None and lat_text is None:
        return None
    if lon_text is None or lat_text is None:
        missing = "JD" if lon_text is None else "WD"
        raise Rejected("safety.missing_field", f"{missing} is required when the other coordinate is given")
    _check(lon_text, _DEGREES, "JD", "decimal degrees")
    _check(lat_text, _DEGREES, "WD", "decimal degrees")
    lon, lat = float(lon_text), float(lat_text)
    if lon == 0.0 and lat == 0.0:
        return None  # the source's "not located" placeholder (contract: tolerated)
    for path, value, (low, high) in (("JD", lon, _LON_RANGE), ("WD", lat, _LAT_RANGE)):
        if not low <= value < high:
            raise Rejected("safety.invalid_value", f"{path} {value} is outside China's range [{low}, {high})")
    return SafetyPosition(lon=lon, lat=lat)


def _reporter(children: _Children) -> Reporter:
    name = children.bounded("XM", 50)
    phone = children.required("LXDH")
    if not _PHONE.fullmatch(phone):
        raise Rejected(
            "safety.invalid_value", f"SBR/LXDH ({len(phone)} characters) is not a mainland phone number"
        )
    id_number = children.optional("SFZH")
    if id_number is not None and not _ID_NUMBER.fullmatch(id_number):
        raise Rejected("safety.invalid_value", "SBR/SFZH is not 17 digits followed by a digit or X")
    return Reporter(name=name, phone=phone, id_number=id_number)


def _mask(value: str, *, keep_head: int, keep_tail: int) -> str:
    if len(value) <= keep_head + keep_tail:
        return "*" * len(value)
    return value[:keep_head] + "*" * (len(value) - keep_head - keep_tail) + value[len(value) - keep_tail :]
