"""Open311 GeoReport v2 answers in XML (the mandatory format) and JSON, from the same data.

A document is a list of items (`services`, `service_requests`, `errors`) or one object
(`service_definition`); each item is a dict whose keys are GeoReport v2 element names in the order
the specification shows them. XML is built with `xml.etree` (user text is escaped by the library,
never spliced into markup), encoded as UTF-8 with the declaration the specification asks for; absent
values are empty elements. JSON is the same items with absent values as `null`. Datetimes are ISO 8601
with the city's offset (Asia/Shanghai, +08:00).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from fastapi import Response

from intake.domain.crosswalk import Open311Service
from open311.store import PublicRequest

Format = Literal["xml", "json"]
FORMATS: Final = ("xml", "json")

_LOCAL: Final = ZoneInfo("Asia/Shanghai")
_XML_DECLARATION: Final = b'<?xml version="1.0" encoding="UTF-8"?>\n'
# The element name of one member of each list, as GeoReport v2 names them.
_MEMBER: Final = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
}
_MEDIA_TYPE: Final = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}


def render(
    fmt: Format, root: str, body: Sequence[Mapping[str, Any]] | Mapping[str, Any], status: int = 200
) -> Response:
    """The response for document `root` holding `body` (a list of items, or one object)."""
    if fmt == "json":
        content = json.dumps(_jsonable(body), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    else:
        element = ET.Element(root)
        _fill(element, root, body)
        content = _XML_DECLARATION + ET.tostring(element, encoding="utf-8", xml_declaration=False)
    return Response(content=content, status_code=status, media_type=_MEDIA_TYPE[fmt])


def error_response(fmt: Format, status: int, description: str) -> Response:
    """`<errors><error><code/><description/></error></errors>`, or `[{"code", "description"}]`."""
    return render(fmt, "errors", [{"code": status, "description": description}], status)


def service_item(service: Open311Service) -> dict[str, Any]:
    return {
        "service_code": service.service_code,
        "service_name": service.service_name,
        "description": service.description,
        "metadata": service.metadata,
        "type": service.type,
        "keywords": ", ".join(service.keywords),
        "group": service.group,
    }


def request_item(
    row: PublicRequest, *, service_name: str | None, service_notice: str | None
) -> dict[str, Any]:
    """One `request` of GET requests: public columns only (PublicRequest has no personal field)."""
    return {
        "service_request_id": str(row.id),
        "status": row.status,
        "status_notes": row.status_notes,
        "service_name": service_name,
        "service_code": row.service_code,
        "description": row.description,
        "agency_responsible": row.agency_responsible,
        "service_notice": service_notice,
        "requested_datetime": row.requested_datetime,
        "updated_datetime": row.updated_datetime,
        "expected_datetime": row.expected_datetime,
        "address": row.address,
        "address_id": row.address_id,
        "zipcode": None,  # not collected: China's postcodes do not locate a request
        "lat": row.lat,
        "long": row.long,
        "media_url": row.media_url,
    }


def timestamp(value: datetime) -> str:
    """ISO 8601 with the city's UTC offset, to the second, e.g. 2026-03-01T10:15:31+08:00."""
    return value.astimezone(_LOCAL).isoformat(timespec="seconds")


def _fill(element: ET.Element, name: str, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _fill(ET.SubElement(element, key), key, item)
    elif isinstance(value, list | tuple):
        member = _MEMBER[name]
        for item in value:
            _fill(ET.SubElement(element, member), member, item)
    elif value is not None:
        element.text = _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return timestamp(value)
    return value
