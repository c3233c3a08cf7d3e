"""The residents' channel: an Open311 GeoReport v2 endpoint under `/open311/v2/`.

Every endpoint answers XML (default, or the `.xml` suffix) or JSON (`.json` suffix); errors are
GeoReport v2 `errors` documents with the HTTP status as their code (contracts/legacy/open311.md).

`POST requests` contract: the form body is validated by the same pure parser the pipeline uses
(`parse_open311`), the service code must be one `GET services` lists (404 otherwise), then, inside
one database transaction, the request is recorded in `open311_request` and its body, byte for byte
less any `api_key` field (checked here, never published: `without_credentials`), is published to
`legacy.open311.v1` with the service's idempotent producer; only when the broker has
acknowledged the record is the transaction committed and 201 answered. So an answered request is
never lost; a request answered 5xx may still have been published (a timeout after the broker took
it), in which case the pipeline, re-reading the topic, opens its case all the same.

Access (onegrid.auth): reads are public when `public_reads` (the default, as GeoReport v2 expects;
credentials presented are still verified), else they need a token or key. An anonymous reader sees
residents' requests with coordinates rounded to `public_coordinate_decimals` (3: about 100 m) and at
most `public_max_results` per query (bulk reads need a key or token, which see exact coordinates);
every GET is rate limited per client address (`read_rate`, 429 with Retry-After). `POST requests` needs an
Open311 client's API key (`X-API-Key`, or GeoReport's `api_key` form field) or a token allowed to
submit, and is rate limited per client address (429 with Retry-After).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from intake.domain.crosswalk import Crosswalk, Open311Service
from intake.domain.errors import Rejected
from intake.domain.feeds.open311.record import MAX_BYTES, parse_open311, without_credentials
from onegrid import telemetry
from onegrid.auth import InvalidToken, Principal, caller, require
from onegrid.envelope import CloudEvent
from onegrid.provided import Provided
from onegrid.ratelimit import RateLimit, RateLimiter
from onegrid.topics import LEGACY_OPEN311
from open311.render import FORMATS, Format, error_response, render, request_item, service_item
from open311.store import PublicRequest, find_requests, record_request

log = logging.getLogger(__name__)

_FORM = "application/x-www-form-urlencoded"
# An unencoded "+08:00" in a query string arrives as " 08:00"; take it as the offset it was meant to be.
_PLUS_AS_SPACE = re.compile(r" ([0-9]{2}:?[0-9]{2})$")


class ApiSettings(BaseSettings):
    """The GeoReport v2 endpoint's knobs (`ONEGRID_OPEN311_*`, beside the service's `Settings`)."""

    model_config = SettingsConfigDict(env_prefix="ONEGRID_OPEN311_", extra="ignore")

    topic: str = LEGACY_OPEN311
    max_body_bytes: int = Field(default=MAX_BYTES, ge=1, le=MAX_BYTES)
    publish_timeout_s: float = Field(default=10.0, gt=0)
    window_days: int = Field(default=90, ge=1)  # GET requests: default and widest date range
    max_results: int = Field(default=1000, ge=1)
    service_notice: str = (
        "已受理，将派遣至责任部门处置。Received; it will be dispatched to the responsible department."
    )
    event_source: str = "/onegrid/open311"
    # GET endpoints without credentials (GeoReport v2 clients read anonymously).
    public_reads: bool = True
    # POST requests per client address.
    submit_rate: RateLimit = Field(default_factory=lambda: RateLimit(rate_per_s=2.0, burst=20))
    # GETs per client address (every reader, keyed or not).
    read_rate: RateLimit = Field(default_factory=lambda: RateLimit(rate_per_s=5.0, burst=60))
    # Anonymous readers: coordinates rounded (3 decimals: ~110 m of latitude, ~95 m of longitude
    # here) and at most this many requests per query.
    public_coordinate_decimals: int = Field(default=3, ge=0, le=6)
    public_max_results: int = Field(default=50, ge=1)


# A client submitting by header credentials; None when it sends only GeoReport's `api_key` form field.
Submitter = Annotated[Principal | None, Depends(require("submit", "open311", optional=True))]


class Open311Error(Exception):
    """An answer other than success: HTTP `status`, with `description` for the resident's client."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


@dataclass(frozen=True)
class Open311Deps:
    """What the endpoints work with, bound by `open311_router`."""

    engine: AsyncEngine
    producer_getter: Callable[[], AIOKafkaProducer | None]
    settings: ApiSettings
    services: tuple[Open311Service, ...]
    read_limited: Callable[[Request], Awaitable[None]]
    submit_limited: Callable[[Request], Awaitable[None]]
    by_code: dict[str, Open311Service]


deps: Provided[Open311Deps] = Provided("open311")
Deps = Annotated[Open311Deps, Depends(deps)]
routes = APIRouter()


async def _read_limited(request: Request, d: Deps) -> None:
    await d.read_limited(request)


async def _submit_limited(request: Request, d: Deps) -> None:
    await d.submit_limited(request)


reading = [Depends(_read_limited)]
posting = [Depends(_submit_limited)]


def _public(d: Open311Deps, row: PublicRequest, request: Request) -> dict[str, Any]:
    service = d.by_code.get(row.service_code)
    name = service.service_name if service is not None else None
    item = request_item(row, service_name=name, service_notice=d.settings.service_notice)
    if caller(request) is None:  # an anonymous reader: where, to within ~100 m
        digits = d.settings.public_coordinate_decimals
        item.update(
            lat=None if row.lat is None else round(row.lat, digits),
            long=None if row.long is None else round(row.long, digits),
        )
    return item


def _most(d: Open311Deps, request: Request) -> int:
    return d.settings.max_results if caller(request) is not None else d.settings.public_max_results


@routes.get("/services", dependencies=reading)
@routes.get("/services.{fmt}", dependencies=reading)
async def list_services(request: Request, d: Deps) -> Response:
    """GET Service List: every service the crosswalk maps."""

    async def services(fmt: Format) -> Response:
        return render(fmt, "services", [service_item(s) for s in d.services])

    return await _guarded(request, services)


@routes.get("/services/{code_fmt}", dependencies=reading)
async def service_definition(request: Request, code_fmt: str, d: Deps) -> Response:
    """GET Service Definition: only for services whose `metadata` is true."""
    code, fmt = _split_format(code_fmt)

    async def definition(fmt: Format) -> Response:
        service = d.by_code.get(code)
        if service is None:
            raise Open311Error(404, f"service_code {code[:64]!r} is not one of GET services")
        if not service.metadata:
            raise Open311Error(
                404, f"service {code} has no definition: it takes no attributes (metadata false)"
            )
        return render(fmt, "service_definition", {"service_code": code, "attributes": []})

    return await _guarded(request, definition, fmt)


@routes.post("/requests", status_code=201, dependencies=posting)
@routes.post("/requests.{fmt}", status_code=201, dependencies=posting)
async def post_request(request: Request, principal: Submitter, d: Deps) -> Response:
    """POST Service Request (form-encoded): 201 only once the request is on legacy.open311.v1."""
    return await _guarded(request, lambda fmt: _post(d, request, fmt, principal))


async def _post(d: Open311Deps, request: Request, fmt: Format, principal: Principal | None) -> Response:
    settings = d.settings
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != _FORM:
        raise Open311Error(415, f"the body must be {_FORM}, not {content_type[:80]!r}")
    raw = await _read_body(request, settings.max_body_bytes)
    if principal is None:
        principal = _form_key_principal(request, raw)
    received_at = datetime.now(UTC)
    request_id = str(uuid.uuid4())
    try:
        req = parse_open311(raw, service_request_id=request_id, received_at=received_at)
    except Rejected as error:
        raise Open311Error(413 if error.reason == "open311.too_large" else 400, error.detail) from None
    if req.service_code not in d.by_code:
        raise Open311Error(404, f"service_code {req.service_code!r} is not one of GET services")
    producer = d.producer_getter()
    if producer is None:
        raise Open311Error(503, "the service is starting; please retry")
    headers = CloudEvent(
        type="cn.onegrid.legacy.open311.v1",
        source=settings.event_source,
        id=request_id,
        time=received_at,
        content_type=content_type,
    ).headers()
    headers += [
        ("open311_service_request_id", request_id.encode()),
        ("open311_received_at", received_at.isoformat().replace("+00:00", "Z").encode()),
    ]
    telemetry.inject(headers)
    try:
        async with d.engine.begin() as conn:
            await record_request(conn, req)
            send = producer.send_and_wait(
                settings.topic, value=without_credentials(raw), key=request_id.encode(), headers=headers
            )
            await asyncio.wait_for(send, timeout=settings.publish_timeout_s)
    except Exception:
        log.exception("open311 request %s could not be recorded", request_id)
        raise Open311Error(503, "the request could not be recorded; please retry") from None
    item = {
        "service_request_id": request_id,
        "service_notice": settings.service_notice,
        "account_id": req.account_id,
    }
    return render(fmt, "service_requests", [item], 201)


@routes.get("/requests", dependencies=reading)
@routes.get("/requests.{fmt}", dependencies=reading)
async def get_requests(request: Request, d: Deps) -> Response:
    """GET Service Requests: filters service_request_id, service_code, start_date, end_date, status."""
    return await _guarded(request, lambda fmt: _search(d, request, fmt))


async def _search(d: Open311Deps, request: Request, fmt: Format) -> Response:
    q = request.query_params
    async with d.engine.connect() as conn:
        if q.get("service_request_id"):
            rows = await find_requests(conn, ids=_ids(q["service_request_id"], _most(d, request)))
        else:
            start, end = _window(
                q.get("start_date"), q.get("end_date"), timedelta(days=d.settings.window_days)
            )
            rows = await find_requests(
                conn,
                service_codes=_list(q.get("service_code")),
                statuses=_statuses(q.get("status")),
                start=start,
                end=end,
                limit=_most(d, request),
            )
    return render(fmt, "service_requests", [_public(d, row, request) for row in rows])


@routes.get("/requests/{id_fmt}", dependencies=reading)
async def get_request(request: Request, id_fmt: str, d: Deps) -> Response:
    """GET Service Request: one request by its service_request_id."""
    request_id, fmt = _split_format(id_fmt)

    async def one(fmt: Format) -> Response:
        try:
            key = uuid.UUID(request_id)
        except ValueError:
            raise Open311Error(404, f"no service request {request_id[:64]!r}") from None
        async with d.engine.connect() as conn:
            rows = await find_requests(conn, ids=[key])
        if not rows:
            raise Open311Error(404, f"no service request {request_id!r}")
        return render(fmt, "service_requests", [_public(d, rows[0], request)])

    return await _guarded(request, one, fmt)


def open311_router(
    *,
    engine: AsyncEngine,
    producer_getter: Callable[[], AIOKafkaProducer | None],
    crosswalk: Crosswalk,
    settings: ApiSettings,
) -> APIRouter:
    """The `/open311/v2` routes. `producer_getter` returns the started producer (None before start-up)."""
    reader = require("read", "open311", optional=settings.public_reads)
    services = crosswalk.open311_services()
    bound = Open311Deps(
        engine=engine,
        producer_getter=producer_getter,
        settings=settings,
        services=services,
        read_limited=RateLimiter.of(settings.read_rate).dependency("open311 GET"),
        submit_limited=RateLimiter.of(settings.submit_rate).dependency("open311 POST requests"),
        by_code={s.service_code: s for s in services},
    )
    r = APIRouter(prefix="/open311/v2", tags=["open311"], dependencies=[Depends(reader), deps.bind(bound)])
    r.include_router(routes)
    return r


def _form_key_principal(request: Request, raw: bytes) -> Principal:
    """The client of GeoReport's `api_key` form field; 401/403 as Open311 errors otherwise."""
    keys = parse_qs(raw.decode("utf-8", "replace")).get("api_key") or []
    if not keys:
        raise Open311Error(401, "an api_key (form field or X-API-Key header) is required to submit requests")
    try:
        principal: Principal = request.app.state.authenticator.from_api_key(keys[0])
    except InvalidToken:
        raise Open311Error(401, "the api_key is unknown or revoked") from None
    if not principal.permits("submit", "open311"):
        raise Open311Error(403, f"role {principal.role} may not submit requests")
    return principal


async def _guarded(
    request: Request, handler: Callable[[Format], Awaitable[Response]], fmt: str | None = None
) -> Response:
    """Run `handler` in the requested format; any `Open311Error` becomes an `errors` document."""
    requested = fmt if fmt is not None else str(request.path_params.get("fmt", "xml"))
    if requested not in FORMATS:
        return error_response("xml", 404, f"format {requested[:16]!r} is not supported: use .xml or .json")
    chosen: Format = "json" if requested == "json" else "xml"
    try:
        return await handler(chosen)
    except Open311Error as error:
        return error_response(chosen, error.status, error.description)
    except (OSError, SQLAlchemyError):
        log.exception("open311 %s %s: the database is unavailable", request.method, request.url.path)
        return error_response(chosen, 503, "the service is temporarily unavailable; please retry")


def _split_format(name: str) -> tuple[str, str]:
    """`abc.json` -> (`abc`, `json`); `abc` -> (`abc`, `xml`)."""
    stem, dot, suffix = name.rpartition(".")
    return (stem, suffix) if dot else (name, "xml")


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` (never buffered whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Open311Error(413, f"body of {declared} bytes, limit {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Open311Error(413, f"body of more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _list(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _ids(text: str, limit: int) -> list[uuid.UUID]:
    """The valid UUIDs of a comma list (others cannot exist, so they are simply not found)."""
    parts = _list(text)
    if len(parts) > limit:
        raise Open311Error(
            400, f"service_request_id lists {len(parts)} ids, limit {limit} (more with an api key)"
        )
    ids = []
    for part in parts:
        try:
            ids.append(uuid.UUID(part))
        except ValueError:
            continue
    return ids


def _statuses(text: str | None) -> list[str]:
    statuses = _list(text)
    bad = [s for s in statuses if s not in ("open", "closed")]
    if bad:
        raise Open311Error(400, f"status {bad[0][:40]!r} is not open or closed")
    return statuses


def _window(start_text: str | None, end_text: str | None, widest: timedelta) -> tuple[datetime, datetime]:
    """[start, end] of requested_datetime: the last `widest` by default; never wider than `widest`."""
    start = _instant(start_text, "start_date")
    end = _instant(end_text, "end_date")
    if start is None and end is None:
        end = datetime.now(UTC)
    if start is None:
        assert end is not None
        start = end - widest
    if end is None:
        end = start + widest
    if end < start:
        raise Open311Error(400, "end_date is before start_date")
    if end - start > widest:
        raise Open311Error(400, f"start_date to end_date spans more than {widest.days} days")
    return start, end


def _instant(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    text = _PLUS_AS_SPACE.sub(r"+\1", text.strip())
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise Open311Error(400, f"{name} {text[:40]!r} is not an ISO 8601 datetime") from None
    if value.tzinfo is None:
        raise Open311Error(400, f"{name} {text[:40]!r} has no UTC offset (e.g. +08:00 or Z)")
    return value
