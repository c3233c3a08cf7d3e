"""Parser for Open311 GeoReport v2 `POST requests` bodies, as received and as kept on `legacy.open311.v1`.

Contract: contracts/legacy/open311.md. `parse_open311` is pure and total: for any bytes it returns an
`Open311Request` or raises `Rejected` with an `open311.*` reason (`too_large`, `encoding`,
`missing_field`, `invalid_value`). The intake API calls it to validate a POST before publishing the
body, and the pipeline calls it again on the same bytes with the same id and receive time, so both
see the identical request. Whether the service code is known is NOT checked here: the API refuses
unknown codes up front, the pipeline's crosswalk quarantines them. Refusal details name the field
and the rule but never echo a personal field (name, phone, email).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import unquote_plus, urlsplit

from intake.domain.coords import CoordSystem
from intake.domain.errors import Rejected
from intake.domain.localtime import LocalTime
from intake.domain.report import Intent, Report, ReporterInfo, SourcePosition
from intake.domain.severity import Severity

__all__ = [
    "MAX_BYTES",
    "MAX_DESCRIPTION",
    "NETWORK",
    "PARSER_VERSION",
    "Open311Request",
    "parse_open311",
    "reports_from_open311",
    "to_report",
]

NETWORK: Final = "open311"
PARSER_VERSION: Final = "open311-1.0.0"
MAX_BYTES: Final = 65_536
MAX_DESCRIPTION: Final = 4000  # characters, as GeoReport v2 states it
MAX_FIELDS: Final = 256
_MAX_LENGTH: Final = {
    "address_string": 1000,
    "address_id": 255,
    "email": 254,
    "device_id": 255,
    "account_id": 255,
    "first_name": 100,
    "last_name": 100,
    "phone": 40,
    "media_url": 2048,
    "jurisdiction_id": 255,
}
_ATTRIBUTE_VALUE_MAX: Final = 1000
_PERSONAL: Final = frozenset({"email", "first_name", "last_name", "phone", "device_id", "account_id"})
# Credentials a client may put into the form; checked by the API and removed before publishing.
CREDENTIAL_FIELDS: Final = frozenset({"api_key"})
_SINGLE: Final = frozenset(
    {"service_code", "lat", "long", "description", *CREDENTIAL_FIELDS, *_MAX_LENGTH}
)  # fields that may appear once; api_key is ignored here (the API checks it)
_CODE = re.compile(r"[0-9A-Za-z_.-]{1,64}")
# [0-9], not \d: \d also matches other Unicode digits, which float() accepts.
_DECIMAL = re.compile(r"[+-]?([0-9]{1,3}(\.[0-9]{0,15})?|\.[0-9]{1,15})")
_ATTRIBUTE = re.compile(r"attribute\[([0-9A-Za-z_.-]{1,64})\](\[\])?")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,189}")
_PHONE = re.compile(r"[0-9+()#*,. -]{3,40}")
# Not allowed in XML 1.0 documents (which the GET answers are) and not storable in PostgreSQL text.
_UNREPRESENTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class Open311Request:
    """One validated service request. Text fields are None when absent or blank; `received_at` is UTC.

    `attributes` are the `attribute[CODE]` / `attribute[CODE][]` fields in order of first appearance,
    each with its values. Personal fields: email, first_name, last_name, phone, device_id, account_id.
    """

    service_request_id: str
    received_at: datetime
    service_code: str
    lat: float | None
    long: float | None
    address_string: str | None
    address_id: str | None
    description: str | None
    media_url: str | None
    email: str | None
    device_id: str | None
    account_id: str | None
    first_name: str | None
    last_name: str | None
    phone: str | None
    jurisdiction_id: str | None
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def reporter_name(self) -> str | None:
        parts = [p for p in (self.first_name, self.last_name) if p]
        return " ".join(parts) or None


def without_credentials(raw: bytes) -> bytes:
    """The form body without its credential fields (however their names are percent-encoded), every
    other byte as sent: what is published, so no key reaches Kafka or the append-only audit trail."""
    segments = raw.split(b"&")
    kept = [s for s in segments if _field_name(s) not in CREDENTIAL_FIELDS]
    return raw if len(kept) == len(segments) else b"&".join(kept)


def _field_name(segment: bytes) -> str:
    return unquote_plus(segment.partition(b"=")[0].decode("utf-8", "replace")).strip()


def parse_open311(raw: bytes, *, service_request_id: str, received_at: datetime) -> Open311Request:
    """Decode, parse and validate one form body, or raise `Rejected` (reasons in open311.md).

    `service_request_id` and `received_at` are what intake assigned when the body arrived (carried in
    the record's headers); `received_at` must be aware (ValueError otherwise: a programming error).
    """
    if received_at.tzinfo is None or received_at.utcoffset() is None:
        raise ValueError("received_at must be an aware datetime")
    if not _CODE.fullmatch(service_request_id):
        raise Rejected(
            "open311.invalid_value",
            f"service_request_id {service_request_id[:80]!r} is not 1-64 of [0-9A-Za-z_.-]",
        )
    if len(raw) > MAX_BYTES:
        raise Rejected("open311.too_large", f"body of {len(raw)} bytes, limit {MAX_BYTES}")
    single, attributes = _fields(raw)
    code = _required_code(single)
    lat, lon = _position(single)
    address_string = _text(single, "address_string")
    address_id = _text(single, "address_id")
    if lat is None and address_string is None and address_id is None:
        raise Rejected(
            "open311.missing_field", "a location is required: lat and long, address_string or address_id"
        )
    description = single.get("description") if single.get("description", "").strip() else None
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise Rejected(
            "open311.invalid_value", f"description has {len(description)} characters, limit {MAX_DESCRIPTION}"
        )
    return Open311Request(
        service_request_id=service_request_id,
        received_at=received_at.astimezone(UTC),
        service_code=code,
        lat=lat,
        long=lon,
        address_string=address_string,
        address_id=address_id,
        description=description,
        media_url=_media_url(single),
        email=_matching(single, "email", _EMAIL, "an e-mail address"),
        device_id=_text(single, "device_id"),
        account_id=_text(single, "account_id"),
        first_name=_text(single, "first_name"),
        last_name=_text(single, "last_name"),
        phone=_matching(single, "phone", _PHONE, "3-40 of digits, spaces and + ( ) - . # * ,"),
        jurisdiction_id=_text(single, "jurisdiction_id"),
        attributes=tuple((k, tuple(v)) for k, v in attributes.items()),
    )


def to_report(req: Open311Request) -> Report:
    """The network-neutral Report of a request: WGS-84 position, severity IV until a person grades it."""
    first_line = (req.description or "").strip().splitlines()
    title = first_line[0][:100] if first_line else f"Open311 service {req.service_code}"
    position = None
    if req.lat is not None and req.long is not None:
        position = SourcePosition(lat=req.lat, lon=req.long, system=CoordSystem.WGS84)
    received = req.received_at.astimezone(UTC)
    return Report(
        network=NETWORK,
        source_id=req.service_request_id,
        intent=Intent.REPORT,
        source_code=req.service_code,
        title=title,
        description=req.description or "",
        reported=LocalTime(utc=received, text=received.isoformat().replace("+00:00", "Z"), zone="UTC"),
        parser_version=PARSER_VERSION,
        severity=Severity.IV,
        severity_source=None,
        position=position,
        address=req.address_string,
        reporter=ReporterInfo(name=req.reporter_name, phone=req.phone),
        attributes={"service_code": req.service_code, "media_url": req.media_url},
    )


def reports_from_open311(value: bytes, headers: Mapping[str, str]) -> list[Report]:
    """The pipeline's adapter for one `legacy.open311.v1` record (value and decoded headers).

    Re-parses the body with the id and receive time the API assigned (headers
    `open311_service_request_id`, `open311_received_at`), so it sees exactly what the API validated.
    """
    request_id = headers.get("open311_service_request_id")
    received_text = headers.get("open311_received_at")
    if not request_id or not received_text:
        raise Rejected(
            "open311.missing_field", "headers open311_service_request_id and open311_received_at are required"
        )
    try:
        received_at = datetime.fromisoformat(received_text)
    except ValueError:
        received_at = None
    if received_at is None or received_at.tzinfo is None:
        raise Rejected("open311.invalid_value", f"open311_received_at {received_text[:40]!r} is not RFC 3339")
    return [to_report(parse_open311(value, service_request_id=request_id, received_at=received_at))]


def _fields(raw: bytes) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Split the body into the single-valued fields and the attributes; unknown fields are ignored."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Rejected(
            "open311.encoding", f"byte 0x{raw[error.start]:02X} at offset {error.start} is not valid UTF-8"
        ) from None
    segments = [s for s in text.split("&") if s]
    if len(segments) > MAX_FIELDS:
        raise Rejected("open311.too_large", f"{len(segments)} form fields, limit {MAX_FIELDS}")
    single: dict[str, str] = {}
    attributes: dict[str, list[str]] = {}
    for index, segment in enumerate(segments):
        raw_key, _, raw_value = segment.partition("=")
        key, value = _unquote(raw_key, index), _unquote(raw_value, index)
        known = key in _SINGLE or key.startswith("attribute")
        if known and _UNREPRESENTABLE.search(value):
            shown = "a personal field" if key in _PERSONAL else f"{key[:80]!r}"
            raise Rejected("open311.invalid_value", f"{shown} contains a control character")
        if key in _SINGLE:
            if key in single:
                raise Rejected("open311.invalid_value", f"{key} is given more than once")
            single[key] = value
        elif key.startswith("attribute"):
            match = _ATTRIBUTE.fullmatch(key)
            if match is None:
                raise Rejected(
                    "open311.invalid_value",
                    f"{key[:80]!r} is not attribute[CODE] with CODE 1-64 of [0-9A-Za-z_.-]",
                )
            if len(value) > _ATTRIBUTE_VALUE_MAX:
                raise Rejected(
                    "open311.invalid_value", f"{key} is longer than {_ATTRIBUTE_VALUE_MAX} characters"
                )
            attributes.setdefault(match[1], []).append(value)
    return single, attributes


def _unquote(text: str, index: int) -> str:
    try:
        return unquote_plus(text, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise Rejected(
            "open311.encoding", f"field {index} percent-decodes to bytes that are not UTF-8"
        ) from None


def _required_code(single: dict[str, str]) -> str:
    code = single.get("service_code", "").strip()
    if not code:
        raise Rejected("open311.missing_field", "service_code is required")
    if not _CODE.fullmatch(code):
        raise Rejected("open311.invalid_value", f"service_code {code[:80]!r} is not 1-64 of [0-9A-Za-z_.-]")
    return code


def _position(single: dict[str, str]) -> tuple[float | None, float | None]:
    lat_text = single.get("lat", "").strip()
    lon_text = single.get("long", "").strip()
    if not lat_text and not lon_text:
        return None, None
    if not lat_text or not lon_text:
        given, missing = ("lat", "long") if lat_text else ("long", "lat")
        raise Rejected("open311.missing_field", f"{given} is given without {missing}")
    lat = _degrees(lat_text, "lat", 90.0)
    lon = _degrees(lon_text, "long", 180.0)
    return lat, lon


def _degrees(text: str, name: str, limit: float) -> float:
    if not _DECIMAL.fullmatch(text):
        raise Rejected("open311.invalid_value", f"{name} {text[:40]!r} is not a decimal number of degrees")
    value = float(text)
    if not -limit <= value <= limit:
        raise Rejected("open311.invalid_value", f"{name} {value!r} is outside [-{limit:g}, {limit:g}]")
    return value


def _text(single: dict[str, str], name: str) -> str | None:
    value = single.get(name, "").strip()
    if not value:
        return None
    if len(value) > _MAX_LENGTH[name]:
        raise Rejected("open311.invalid_value", f"{name} is longer than {_MAX_LENGTH[name]} characters")
    return value


def _matching(single: dict[str, str], name: str, pattern: re.Pattern[str], rule: str) -> str | None:
    value = _text(single, name)
    if value is not None and not pattern.fullmatch(value):
        raise Rejected("open311.invalid_value", f"{name} is not {rule}")  # never echo the value
    return value


def _media_url(single: dict[str, str]) -> str | None:
    url = _text(single, "media_url")
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and not re.search(r"\s", url)
    except ValueError:  # e.g. an invalid IPv6 literal or port
        ok = False
    if not ok:
        raise Rejected("open311.invalid_value", f"media_url {url[:80]!r} is not an absolute http(s) URL")
    return url
