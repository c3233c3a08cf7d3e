"""CAP 1.2 (OASIS Common Alerting Protocol) alerts from the emergency-management network.

The accepted dialect, its limits and every reason code are specified in ``contracts/legacy/cap.md``.
``parse_alert`` is the only way in; areas and their geometry live in ``intake.domain.feeds.cap.area``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final, TypeVar
from xml.etree.ElementTree import Element, ParseError
from xml.parsers.expat import ErrorString

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden, NotSupportedError
from shapely.geometry.base import BaseGeometry

from intake.domain.errors import Rejected
from intake.domain.feeds.cap.area import (
    CapArea,
    CapValue,
    check_vertices,
    parse_circle,
    parse_decimal,
    parse_polygon,
    union_shapes,
)
from intake.domain.feeds.cap.schema import parse_plain
from intake.domain.feeds.cap.schema import validate as validate_schema
from intake.domain.xmldoc import parse_document

__all__ = [
    "CAP_NAMESPACE",
    "MAX_ALERT_BYTES",
    "TOLERANCE_VERY_LIKELY",
    "CapAlert",
    "CapCertainty",
    "CapInfo",
    "CapMsgType",
    "CapReference",
    "CapResource",
    "CapScope",
    "CapSeverity",
    "CapStatus",
    "CapUrgency",
    "parse_alert",
]

CAP_NAMESPACE: Final = "urn:oasis:names:tc:emergency:cap:1.2"
MAX_ALERT_BYTES: Final = 512 * 1024
TOLERANCE_VERY_LIKELY: Final = "certainty_very_likely"

_Q: Final = "{" + CAP_NAMESPACE + "}"
# CAP 1.0 wording still sent by old encoders, read as its CAP 1.2 value (tolerance below).
_CERTAINTY_ALIASES: Final = {"Very Likely": "Likely"}
_BOM: Final = b"\xef\xbb\xbf"
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}", re.ASCII)
_TOKEN = re.compile(r'"([^"]*)"|(\S+)')
# CAP 1.2: identifier and sender "MUST NOT include spaces, commas or restricted characters (< and &)".
_FORBIDDEN_IN_ID = re.compile(r"[\s,<&]")

CATEGORIES: Final = frozenset(
    {
        "Geo",
        "Met",
        "Safety",
        "Security",
        "Rescue",
        "Fire",
        "Health",
        "Env",
        "Transport",
        "Infra",
        "CBRNE",
        "Other",
    }
)
RESPONSE_TYPES: Final = frozenset(
    {"Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None"}
)


class CapStatus(StrEnum):
    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    SYSTEM = "System"
    TEST = "Test"
    DRAFT = "Draft"


class CapMsgType(StrEnum):
    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"
    ACK = "Ack"
    ERROR = "Error"


class CapScope(StrEnum):
    PUBLIC = "Public"
    RESTRICTED = "Restricted"
    PRIVATE = "Private"


class CapUrgency(StrEnum):
    """``rank``: larger is more urgent (Past, already over, ranks below Unknown)."""

    IMMEDIATE = "Immediate"
    EXPECTED = "Expected"
    FUTURE = "Future"
    PAST = "Past"
    UNKNOWN = "Unknown"

    @property
    def rank(self) -> int:
        return {"Immediate": 4, "Expected": 3, "Future": 2, "Unknown": 1, "Past": 0}[self.value]


class CapSeverity(StrEnum):
    """``rank``: larger is more severe."""

    EXTREME = "Extreme"
    SEVERE = "Severe"
    MODERATE = "Moderate"
    MINOR = "Minor"
    UNKNOWN = "Unknown"

    @property
    def rank(self) -> int:
        return {"Extreme": 4, "Severe": 3, "Moderate": 2, "Minor": 1, "Unknown": 0}[self.value]


class CapCertainty(StrEnum):
    """``rank``: larger is more certain (Unlikely ranks below Unknown)."""

    OBSERVED = "Observed"
    LIKELY = "Likely"
    POSSIBLE = "Possible"
    UNLIKELY = "Unlikely"
    UNKNOWN = "Unknown"

    @property
    def rank(self) -> int:
        return {"Observed": 4, "Likely": 3, "Possible": 2, "Unknown": 1, "Unlikely": 0}[self.value]


@dataclass(frozen=True, slots=True)
class CapReference:
    """One ``sender,identifier,sent`` triple of ``references``: an earlier message this one cites."""

    sender: str
    identifier: str
    sent: datetime
    sent_text: str

    @property
    def key(self) -> tuple[str, str]:
        """(sender, identifier): CAP's identity of a message, equal to ``CapAlert.key`` of the cited one."""
        return (self.sender, self.identifier)


@dataclass(frozen=True, slots=True)
class CapResource:
    """A ``resource`` reference; inline content (``derefUri``) is not kept."""

    resource_desc: str
    mime_type: str
    size: int | None
    uri: str | None
    digest: str | None


@dataclass(frozen=True, slots=True)
class CapInfo:
    """One ``info`` block. Times are aware UTC datetimes next to the sender's original text."""

    language: str
    categories: tuple[str, ...]
    event: str
    response_types: tuple[str, ...]
    urgency: CapUrgency
    severity: CapSeverity
    certainty: CapCertainty
    audience: str | None
    event_codes: tuple[CapValue, ...]
    effective: datetime | None
    effective_text: str | None
    onset: datetime | None
    onset_text: str | None
    expires: datetime | None
    expires_text: str | None
    sender_name: str | None
    headline: str | None
    description: str | None
    instruction: str | None
    web: str | None
    contact: str | None
    parameters: tuple[CapValue, ...]
    resources: tuple[CapResource, ...]
    areas: tuple[CapArea, ...]

    def geometry(self) -> BaseGeometry | None:
        """Union of this info's areas (see ``CapArea.geometry``); None when none has a shape."""
        return union_shapes(area.geometry() for area in self.areas)


@dataclass(frozen=True, slots=True)
class CapAlert:
    """A validated CAP 1.2 ``alert``. ``sent`` is in UTC; ``sent_text`` is what the sender wrote.

    ``references`` is empty unless the message cites earlier ones; it is never empty for Update and
    Cancel. ``tolerances`` names the accepted deviations from CAP 1.2 (see the contract).
    """

    identifier: str
    sender: str
    sent: datetime
    sent_text: str
    status: CapStatus
    msg_type: CapMsgType
    source: str | None
    scope: CapScope
    restriction: str | None
    addresses: tuple[str, ...]
    codes: tuple[str, ...]
    note: str | None
    references: tuple[CapReference, ...]
    incidents: tuple[str, ...]
    infos: tuple[CapInfo, ...]
    tolerances: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str]:
        """(sender, identifier), the identity later messages cite in their ``references``."""
        return (self.sender, self.identifier)

    def most_severe_info(self) -> CapInfo | None:
        """The info with the highest (severity, urgency, certainty) rank; the first one on ties."""
        if not self.infos:
            return None
        return max(self.infos, key=lambda i: (i.severity.rank, i.urgency.rank, i.certainty.rank))

    def geometry(self) -> BaseGeometry | None:
        """Union of all infos' areas in (lon, lat) order; None when no area has a polygon or circle.
        Raises ``Rejected("cap.too_many_vertices")`` before computing anything on too many points."""
        check_vertices(area for info in self.infos for area in info.areas)
        return union_shapes(info.geometry() for info in self.infos)


def parse_alert(raw: bytes, *, max_bytes: int = MAX_ALERT_BYTES) -> CapAlert:
    """Parse and validate one CAP 1.2 alert document.

    The size limit is checked before any parsing; DTDs, entity declarations and external references
    are refused before anything is fetched or expanded. Raises ``Rejected`` (reasons ``cap.*``, see the
    contract) for anything outside the accepted dialect and never raises anything else.
    """
    if len(raw) > max_bytes:
        raise Rejected("cap.too_large", f"document of {len(raw)} bytes exceeds the limit of {max_bytes}")
    document = raw.removeprefix(_BOM)
    # One parse: libxml2's tree serves the schema and the reading below alike (the safe parser's,
    # through expat, for a document it cannot take as plain: another encoding, a DTD, an error).
    parsed = parse_plain(document)
    root = parsed if parsed is not None else _parse_xml(document)
    if root.tag != _Q + "alert":
        raise Rejected("cap.namespace", f"root element is {root.tag!r}, expected {_Q}alert")
    # The schema decides structure, order, enumerations and types; the checks below add what it
    # cannot say (empty elements, Private needs addresses, references, identifiers, geometry).
    validate_schema(root, document=document, parsed=parsed, certainty_aliases=_CERTAINTY_ALIASES)
    top = _kids(root)
    # Checked in CAP's element order, so the first missing or invalid element is the one reported.
    identifier = _identity(_required(top, "identifier", "alert"), "alert/identifier")
    sender = _identity(_required(top, "sender", "alert"), "alert/sender")
    sent_text = _required(top, "sent", "alert")
    sent = _time(sent_text, "alert/sent")
    status = _enum(CapStatus, _required(top, "status", "alert"), "alert/status")
    msg_type = _enum(CapMsgType, _required(top, "msgType", "alert"), "alert/msgType")
    scope = _enum(CapScope, _required(top, "scope", "alert"), "alert/scope")
    addresses = _tokens(_optional(top, "addresses", "alert"))
    if scope is CapScope.PRIVATE and not addresses:
        raise Rejected("cap.missing_field", "alert/addresses is required when scope is Private")
    references_text = _optional(top, "references", "alert")
    references = _references(references_text) if references_text else ()
    if msg_type in (CapMsgType.UPDATE, CapMsgType.CANCEL) and not references:
        raise Rejected("cap.references", f"msgType {msg_type} must cite earlier messages in alert/references")
    tolerances: list[str] = []
    return CapAlert(
        identifier=identifier,
        sender=sender,
        sent=sent,
        sent_text=sent_text,
        status=status,
        msg_type=msg_type,
        source=_optional(top, "source", "alert"),
        scope=scope,
        restriction=_optional(top, "restriction", "alert"),
        addresses=addresses,
        codes=tuple(text for el in _children(top, "code") if (text := _text(el))),
        note=_optional(top, "note", "alert"),
        references=references,
        incidents=_tokens(_optional(top, "incidents", "alert")),
        infos=tuple(_info(el, f"info[{n}]", tolerances) for n, el in enumerate(_children(top, "info"))),
        tolerances=tuple(dict.fromkeys(tolerances)),
    )


def _parse_xml(data: bytes) -> Element:
    try:
        root = parse_document(data)
    except DTDForbidden as e:
        raise Rejected(
            "cap.forbidden_xml", f"DTD <!DOCTYPE {e.name}> (system id {e.sysid!r}, public id {e.pubid!r})"
        ) from None
    except EntitiesForbidden as e:
        raise Rejected(
            "cap.forbidden_xml", f"entity declaration {e.name!r} (system id {e.sysid!r})"
        ) from None
    except ExternalReferenceForbidden as e:
        raise Rejected("cap.forbidden_xml", f"external reference (system id {e.sysid!r})") from None
    except NotSupportedError as e:
        raise Rejected("cap.forbidden_xml", f"unsupported XML feature: {e}") from None
    except ParseError as e:
        line, column = e.position
        raise Rejected("cap.xml_malformed", f"line {line}, column {column}: {ErrorString(e.code)}") from None
    except (ValueError, LookupError) as e:
        # pyexpat refuses multi-byte legacy encodings (GBK) and unknown encoding names this way.
        raise Rejected("cap.encoding", f"encoding not supported: {e}") from None
    return root


def _info(el: Element, where: str, tolerances: list[str]) -> CapInfo:
    kids = _kids(el)
    categories = tuple(_text(c) for c in _children(kids, "category"))
    if not categories:
        raise Rejected("cap.missing_field", f"{where}/category is required (one or more)")
    for category in categories:
        _member(category, CATEGORIES, f"{where}/category")
    response_types = tuple(_text(c) for c in _children(kids, "responseType"))
    for response_type in response_types:
        _member(response_type, RESPONSE_TYPES, f"{where}/responseType")
    certainty_text = _required(kids, "certainty", where)
    if certainty_text == "Very Likely":  # CAP 1.0 wording, still sent by old encoders
        certainty_text = CapCertainty.LIKELY
        tolerances.append(TOLERANCE_VERY_LIKELY)
    times = {name: _optional(kids, name, where) for name in ("effective", "onset", "expires")}
    stamps = {name: _time(text, f"{where}/{name}") if text else None for name, text in times.items()}
    return CapInfo(
        language=_optional(kids, "language", where) or "en-US",
        categories=categories,
        event=_required(kids, "event", where),
        response_types=response_types,
        urgency=_enum(CapUrgency, _required(kids, "urgency", where), f"{where}/urgency"),
        severity=_enum(CapSeverity, _required(kids, "severity", where), f"{where}/severity"),
        certainty=_enum(CapCertainty, certainty_text, f"{where}/certainty"),
        audience=_optional(kids, "audience", where),
        event_codes=_values(kids, "eventCode", where),
        effective=stamps["effective"],
        effective_text=times["effective"],
        onset=stamps["onset"],
        onset_text=times["onset"],
        expires=stamps["expires"],
        expires_text=times["expires"],
        sender_name=_optional(kids, "senderName", where),
        headline=_optional(kids, "headline", where),
        description=_optional(kids, "description", where),
        instruction=_optional(kids, "instruction", where),
        web=_optional(kids, "web", where),
        contact=_optional(kids, "contact", where),
        parameters=_values(kids, "parameter", where),
        resources=tuple(
            _resource(r, f"{where}/resource[{n}]") for n, r in enumerate(_children(kids, "resource"))
        ),
        areas=tuple(_area(a, f"{where}/area[{n}]") for n, a in enumerate(_children(kids, "area"))),
    )


def _area(el: Element, where: str) -> CapArea:
    kids = _kids(el)
    altitude_text = _optional(kids, "altitude", where)
    ceiling_text = _optional(kids, "ceiling", where)
    if ceiling_text is not None and altitude_text is None:
        raise Rejected("cap.invalid_area", f"{where}/ceiling is given without altitude")
    return CapArea(
        area_desc=_required(kids, "areaDesc", where),
        polygons=tuple(
            parse_polygon(_text(p), f"{where}/polygon[{n}]") for n, p in enumerate(_children(kids, "polygon"))
        ),
        circles=tuple(
            parse_circle(_text(c), f"{where}/circle[{n}]") for n, c in enumerate(_children(kids, "circle"))
        ),
        geocodes=_values(kids, "geocode", where),
        altitude=parse_decimal(altitude_text, f"{where}/altitude", "cap.invalid_area")
        if altitude_text
        else None,
        ceiling=parse_decimal(ceiling_text, f"{where}/ceiling", "cap.invalid_area") if ceiling_text else None,
    )


def _resource(el: Element, where: str) -> CapResource:
    kids = _kids(el)
    size_text = _optional(kids, "size", where)
    if size_text is not None and not (size_text.isascii() and size_text.isdigit()):
        raise Rejected("cap.invalid_value", f"{where}/size {size_text[:60]!r} is not a whole number of bytes")
    return CapResource(
        resource_desc=_required(kids, "resourceDesc", where),
        mime_type=_required(kids, "mimeType", where),
        size=int(size_text) if size_text is not None else None,
        uri=_optional(kids, "uri", where),
        digest=_optional(kids, "digest", where),
    )


def _values(kids: _Kids, name: str, where: str) -> tuple[CapValue, ...]:
    pairs = []
    for n, pair in enumerate(_children(kids, name)):
        inner = f"{where}/{name}[{n}]"
        of_pair = _kids(pair)
        pairs.append(
            CapValue(_required(of_pair, "valueName", inner), _optional(of_pair, "value", inner) or "")
        )
    return tuple(pairs)


def _references(text: str) -> tuple[CapReference, ...]:
    references = []
    for n, triple in enumerate(text.split()):
        parts = triple.split(",")
        if len(parts) != 3 or not all(parts):
            raise Rejected(
                "cap.references",
                f"alert/references item {n} {triple[:120]!r} is not 'sender,identifier,sent'",
            )
        try:
            sent = _time(parts[2], f"alert/references item {n}")
        except Rejected as e:
            raise Rejected("cap.references", e.detail) from None
        references.append(CapReference(parts[0], parts[1], sent, parts[2]))
    return tuple(references)


def _time(text: str, where: str) -> datetime:
    if text[-1:] in ("Z", "z"):
        raise Rejected(
            "cap.invalid_time", f"{where} {text!r} ends in 'Z', which CAP 1.2 forbids (UTC is -00:00)"
        )
    if not _TIME.fullmatch(text):
        raise Rejected("cap.invalid_time", f"{where} {text[:60]!r} is not YYYY-MM-DDThh:mm:ss±hh:mm")
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError) as e:
        raise Rejected("cap.invalid_time", f"{where} {text!r}: {e}") from None


def _identity(text: str, where: str) -> str:
    if _FORBIDDEN_IN_ID.search(text):
        raise Rejected("cap.invalid_value", f"{where} {text[:120]!r} contains a space, comma, '<' or '&'")
    return text


_E = TypeVar("_E", bound=StrEnum)


def _enum(kind: type[_E], text: str, where: str) -> _E:
    try:
        return kind(text)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise Rejected("cap.invalid_value", f"{where} {text[:60]!r} is not one of {allowed}") from None


def _member(text: str, allowed: frozenset[str], where: str) -> None:
    if text not in allowed:
        raise Rejected(
            "cap.invalid_value", f"{where} {text[:60]!r} is not one of {', '.join(sorted(allowed))}"
        )


def _tokens(text: str | None) -> tuple[str, ...]:
    """CAP's space-separated lists, where a "quoted string" is one item."""
    if not text:
        return ()
    return tuple(quoted if quoted else bare for quoted, bare in _TOKEN.findall(text))


# An element's CAP children by local name. Each element is looked up by name many times (an info
# block ~25): indexed once, in one pass over its children, instead of one pass per lookup.
_Kids = dict[str, list[Element]]
_NO_CHILDREN: Final[tuple[Element, ...]] = ()


def _kids(el: Element) -> _Kids:
    kids: _Kids = {}
    for child in el:
        tag = child.tag
        if isinstance(tag, str) and tag.startswith(_Q):
            kids.setdefault(tag[len(_Q) :], []).append(child)
    return kids


def _children(kids: _Kids, name: str) -> Sequence[Element]:
    return kids.get(name, _NO_CHILDREN)


def _text(el: Element) -> str:
    return (el.text or "").strip()


def _optional(kids: _Kids, name: str, where: str) -> str | None:
    """The stripped text of the single child ``name``; None when absent or empty."""
    found = _children(kids, name)
    if len(found) > 1:
        raise Rejected("cap.invalid_value", f"{where}/{name} occurs {len(found)} times, at most once allowed")
    return (_text(found[0]) or None) if found else None


def _required(kids: _Kids, name: str, where: str) -> str:
    text = _optional(kids, name, where)
    if text is None:
        raise Rejected("cap.missing_field", f"{where}/{name} is required and missing or empty")
    return text
