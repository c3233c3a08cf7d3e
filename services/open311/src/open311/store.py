"""The `open311_request` table (migration 0002): record a request, read its public part, follow its case.

Contract:
- `record_request` is idempotent (a second call for the same service_request_id changes nothing), so
  the API and, later, the pipeline re-reading `legacy.open311.v1` may both call it.
- `find_requests` selects only `PUBLIC_COLUMNS`: the personal columns never leave the database
  through this module.
- `apply_changes` records each case's latest lifecycle change (`case_status`) and applies it to the
  case's requests, only where its seq is higher than the one stored, so replays and out-of-order
  duplicates never move a status backwards.
- `link_cases` moves a request to the case intake put it in and gives it that case's current status
  (idempotent), whichever of the link and the case's lifecycle is read first.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from intake.domain.feeds.open311.record import NETWORK, Open311Request
from intake.domain.identity import case_id_for
from open311.domain.status import CaseLink, StatusChange

_metadata = sa.MetaData()
open311_request = sa.Table(
    "open311_request",  # unqualified: the engine's search_path names the service's schema
    _metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("case_id", UUID(as_uuid=True), nullable=False),
    sa.Column("service_code", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("lat", sa.Float),
    sa.Column("long", sa.Float),
    sa.Column("address", sa.Text),
    sa.Column("address_id", sa.Text),
    sa.Column("media_url", sa.Text),
    sa.Column("requested_datetime", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_datetime", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expected_datetime", sa.DateTime(timezone=True)),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("status_notes", sa.Text),
    sa.Column("agency_responsible", sa.Text),
    sa.Column("lifecycle_seq", sa.Integer, nullable=False),
    sa.Column("first_name", sa.Text),
    sa.Column("last_name", sa.Text),
    sa.Column("email", sa.Text),
    sa.Column("phone", sa.Text),
    sa.Column("device_id", sa.Text),
    sa.Column("account_id", sa.Text),
)

# Where each case stands (migration 0002): its latest lifecycle event; seq 0 is a link's placeholder.
case_status = sa.Table(
    "case_status",
    _metadata,
    sa.Column("case_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("status", sa.Text),
    sa.Column("status_notes", sa.Text),
    sa.Column("updated_datetime", sa.DateTime(timezone=True)),
    sa.Column("expected_datetime", sa.DateTime(timezone=True)),
    sa.Column("agency_responsible", sa.Text),
)

PUBLIC_COLUMNS = (
    "id",
    "service_code",
    "description",
    "lat",
    "long",
    "address",
    "address_id",
    "media_url",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "status",
    "status_notes",
    "agency_responsible",
)


@dataclass(frozen=True, slots=True)
class PublicRequest:
    """What Open311 `GET requests` may show of one request: no personal field exists here."""

    id: uuid.UUID
    service_code: str
    description: str | None
    lat: float | None
    long: float | None
    address: str | None
    address_id: str | None
    media_url: str | None
    requested_datetime: datetime
    updated_datetime: datetime
    expected_datetime: datetime | None
    status: str
    status_notes: str | None
    agency_responsible: str | None


async def record_request(conn: AsyncConnection, req: Open311Request) -> bool:
    """Insert the request as `open` (no-op if its id is already there); True if this call inserted it."""
    values = {
        "id": uuid.UUID(req.service_request_id),
        "case_id": case_id_for(NETWORK, req.service_request_id),
        "service_code": req.service_code,
        "description": req.description,
        "lat": req.lat,
        "long": req.long,
        "address": req.address_string,
        "address_id": req.address_id,
        "media_url": req.media_url,
        "requested_datetime": req.received_at,
        "updated_datetime": req.received_at,
        "status": "open",
        "status_notes": None,
        "lifecycle_seq": 0,
        "first_name": req.first_name,
        "last_name": req.last_name,
        "email": req.email,
        "phone": req.phone,
        "device_id": req.device_id,
        "account_id": req.account_id,
    }
    stmt = insert(open311_request).values(values).on_conflict_do_nothing(index_elements=["id"])
    result = await conn.execute(stmt)
    return bool(result.rowcount)


async def find_requests(
    conn: AsyncConnection,
    *,
    ids: Sequence[uuid.UUID] | None = None,
    service_codes: Sequence[str] = (),
    statuses: Sequence[str] = (),
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 1000,
) -> list[PublicRequest]:
    """Requests newest first. With `ids`, only those (the other filters are ignored, as GeoReport v2
    says); otherwise those requested in [start, end] matching the codes and statuses given."""
    t = open311_request.c
    query = sa.select(*(t[name] for name in PUBLIC_COLUMNS))
    if ids is not None:
        query = query.where(t.id.in_(list(ids)))
    else:
        if service_codes:
            query = query.where(t.service_code.in_(list(service_codes)))
        if statuses:
            query = query.where(t.status.in_(list(statuses)))
        if start is not None:
            query = query.where(t.requested_datetime >= start)
        if end is not None:
            query = query.where(t.requested_datetime <= end)
    query = query.order_by(t.requested_datetime.desc(), t.id).limit(limit)
    rows = (await conn.execute(query)).mappings().all()
    return [PublicRequest(**row) for row in rows]


async def apply_changes(conn: AsyncConnection, changes: Sequence[StatusChange]) -> None:
    """Record each case's change if newer than what `case_status` holds, then bring the requests of
    those cases up to it (two round trips, cases in id order: see `link_cases` on the locks)."""
    if not changes:
        return
    ordered = sorted(changes, key=lambda c: c.case_id)
    stmt = insert(case_status)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["case_id"],
            set_={
                name: stmt.excluded[name]
                for name in (
                    "seq",
                    "status",
                    "status_notes",
                    "updated_datetime",
                    "expected_datetime",
                    "agency_responsible",
                )
            },
            where=case_status.c.seq < stmt.excluded.seq,
        ),
        [
            {
                "case_id": c.case_id,
                "seq": c.seq,
                "status": c.status,
                "status_notes": c.status_notes,
                "updated_datetime": c.updated,
                "expected_datetime": c.expected,
                "agency_responsible": c.agency,
            }
            for c in ordered
        ],
    )
    await _follow_cases(conn, open311_request.c.case_id.in_([c.case_id for c in ordered]))


async def link_cases(conn: AsyncConnection, links: Sequence[CaseLink]) -> None:
    """Point each request at the case it belongs to and show where that case stands now.

    The link and the case's lifecycle arrive by different topics, in any order, handled in
    concurrent transactions. So the link first takes a share lock on each case's `case_status` row
    (inserting a placeholder for a case not heard of yet): a lifecycle change of that case waits for
    the link to commit and then finds the request on its case, or the link waits for the change and
    then copies it; neither misses the other. Both take their locks in case id order (no deadlock).
    Idempotent; a request already on its case is not moved."""
    if not links:
        return
    cases = sorted({link.case_id for link in links})
    await conn.execute(
        insert(case_status).on_conflict_do_nothing(index_elements=["case_id"]),
        [{"case_id": case_id, "seq": 0} for case_id in cases],
    )
    await conn.execute(
        sa.select(case_status.c.case_id)
        .where(case_status.c.case_id.in_(cases))
        .order_by(case_status.c.case_id)
        .with_for_update(read=True)
    )
    t = open311_request.c
    stmt = (
        sa.update(open311_request)
        .where(t.id == sa.bindparam("b_id"), t.case_id != sa.bindparam("b_case_id"))
        .values(case_id=sa.bindparam("b_case_id"), lifecycle_seq=0)
    )
    await conn.execute(stmt, [{"b_id": link.service_request_id, "b_case_id": link.case_id} for link in links])
    await _follow_cases(conn, t.id.in_([link.service_request_id for link in links]))


async def _follow_cases(conn: AsyncConnection, which: sa.ColumnElement[bool]) -> None:
    """The requests `which` select take their case's status from `case_status` where it is newer."""
    t, c = open311_request.c, case_status.c
    await conn.execute(
        sa.update(open311_request)
        .where(which, t.case_id == c.case_id, t.lifecycle_seq < c.seq)
        .values(
            status=c.status,
            status_notes=c.status_notes,
            updated_datetime=c.updated_datetime,
            expected_datetime=c.expected_datetime,
            agency_responsible=c.agency_responsible,
            lifecycle_seq=c.seq,
        )
    )
