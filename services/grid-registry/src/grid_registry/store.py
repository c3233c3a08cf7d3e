"""PostgreSQL adapter: versioned records (table record_version) and their changelog outbox.

Writers run inside `RecordStore.writing()`: one transaction holding the registry's write lock (a
transaction-scoped advisory lock), so checks against stored neighbours (sibling overlap, expected
revisions, references) cannot race, and outbox ids follow commit order. Registry writes are rare;
serializing them costs nothing that matters.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from grid_registry.domain.records import key_of, parent_column, same_content
from onegrid.envelope import CloudEvent
from onegrid.kafka.records import OutRecord
from onegrid.outbox import enqueue

Json = dict[str, Any]
WRITE_LOCK = 0x6772_6964_7265_67  # "gridreg"
SOURCE = "/onegrid/grid-registry"
_CURRENT = "valid_to IS NULL"
_AS_OF = "valid_from <= :at AND (valid_to IS NULL OR valid_to > :at)"


def utc_text(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Written:
    """The outcome of one write: the record now current (None after a delete) and whether it changed."""

    record: Json | None
    changed: bool


class RecordStore:
    def __init__(self, engine: AsyncEngine, *, topic: str) -> None:
        self.engine = engine
        self.topic = topic

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK})
            yield conn

    async def is_empty(self) -> bool:
        async with self.engine.connect() as conn:
            return not await conn.scalar(text("SELECT EXISTS (SELECT 1 FROM record_version)"))

    # -- reads ----------------------------------------------------------------------------------

    async def get(
        self, kind: str, code: str, *, at: datetime | None = None, conn: AsyncConnection | None = None
    ) -> Json | None:
        """The current record (or the one in force at `at`); None when absent or deleted."""
        when = _CURRENT if at is None else _AS_OF
        sql = text(
            f"SELECT body FROM record_version WHERE kind = :kind AND code = :code AND {when} AND body IS NOT NULL"
        )
        params = {"kind": kind, "code": code, "at": at}
        if conn is not None:
            record: Json | None = _body(await conn.scalar(sql, params))
            return record
        async with self.engine.connect() as c:
            record = _body(await c.scalar(sql, params))
            return record

    async def records(
        self,
        kind: str,
        *,
        at: datetime | None = None,
        parent: str | None = None,
        level: str | None = None,
        active: bool | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[Json]:
        """Records of `kind` in code order, filtered; `after` is the last code of the previous page."""
        where = ["kind = :kind", "body IS NOT NULL", _CURRENT if at is None else _AS_OF]
        params: dict[str, Any] = {"kind": kind, "at": at, "parent": parent, "level": level, "after": after}
        if parent is not None:
            where.append("parent = :parent")
        if level is not None:
            where.append("level = :level")
        if active is not None:
            where.append("(body->>'active')::boolean = :active")
            params["active"] = active
        if after is not None:
            where.append("code > :after")
        sql = f"SELECT body FROM record_version WHERE {' AND '.join(where)} ORDER BY code"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        async with self.engine.connect() as conn:
            return [_body(b) for b in (await conn.scalars(text(sql), params)).all()]

    async def history(self, kind: str, code: str) -> list[Json]:
        sql = text(
            "SELECT version, valid_from, valid_to, body FROM record_version "
            "WHERE kind = :kind AND code = :code ORDER BY version"
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sql, {"kind": kind, "code": code})).all()
        return [
            {
                "revision": r.version,
                "valid_from": utc_text(r.valid_from),
                "valid_to": None if r.valid_to is None else utc_text(r.valid_to),
                "deleted": r.body is None,
                "record": _body(r.body),
            }
            for r in rows
        ]

    async def areas(
        self, conn: AsyncConnection, kind: str, parent: str, levels: Sequence[str]
    ) -> dict[str, Json]:
        """Current areas of the `kind` records under `parent` at `levels`, by code."""
        rows = await conn.execute(
            text(
                f"SELECT code, body->'area' AS area FROM record_version WHERE kind = :kind AND parent = :parent "
                f"AND level = ANY(:levels) AND {_CURRENT} AND body IS NOT NULL AND body->'area' <> 'null'"
            ),
            {"kind": kind, "parent": parent, "levels": list(levels)},
        )
        return {r.code: _body(r.area) for r in rows.all()}

    async def existing(self, conn: AsyncConnection, kind: str, codes: Iterable[str]) -> set[str]:
        wanted = sorted(set(codes))
        if not wanted:
            return set()
        rows = await conn.scalars(
            text(
                f"SELECT code FROM record_version WHERE kind = :kind AND code = ANY(:codes) AND {_CURRENT} AND body IS NOT NULL"
            ),
            {"kind": kind, "codes": wanted},
        )
        return set(rows.all())

    async def children(self, conn: AsyncConnection, code: str) -> list[str]:
        """Keys of current records whose parent is `code` (divisions, grids, staff of a department)."""
        rows = await conn.execute(
            text(
                f"SELECT kind, code FROM record_version WHERE parent = :code AND {_CURRENT} AND body IS NOT NULL LIMIT 5"
            ),
            {"code": code},
        )
        return [key_of(r.kind, r.code) for r in rows.all()]

    # -- writes (inside `writing()`) ---------------------------------------------------------------

    async def put_many(
        self, conn: AsyncConnection, bodies: Sequence[Json], *, now: datetime | None = None
    ) -> list[Written]:
        """Store each body as the next version of its key unless its content is unchanged; one outbox
        record per change. Bodies need not carry revision/updated_at: they are stamped here."""
        now = now or datetime.now(UTC)
        keys = [(b["kind"], b["code"]) for b in bodies]
        if len(set(keys)) != len(keys):
            raise ValueError("a batch names one record twice")
        current = await self._current(conn, set(keys))
        out: list[Written] = []
        rows: list[Json] = []
        for body in bodies:
            key = (body["kind"], body["code"])
            version, old = current.get(key, (0, None))
            canonical = json.loads(json.dumps(body))
            if same_content(old, canonical):
                out.append(Written(old, False))
                continue
            record = {**canonical, "revision": version + 1, "updated_at": utc_text(now)}
            current[key] = (version + 1, record)
            rows.append(record)
            out.append(Written(record, True))
        await self._insert_versions(conn, [(r["kind"], r["code"], r) for r in rows], now)
        return out

    async def delete(
        self, conn: AsyncConnection, kind: str, code: str, *, now: datetime | None = None
    ) -> bool:
        """Close the current version and publish a tombstone; False when there is nothing to delete."""
        now = now or datetime.now(UTC)
        current = await self._current(conn, {(kind, code)})
        if current.get((kind, code), (0, None))[1] is None:
            return False
        await self._insert_versions(conn, [(kind, code, None)], now)
        return True

    async def _current(
        self, conn: AsyncConnection, keys: set[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, Json | None]]:
        if not keys:
            return {}
        kinds = sorted({k for k, _ in keys})
        rows = await conn.execute(
            text(
                f"SELECT kind, code, version, body FROM record_version WHERE kind = ANY(:kinds) AND code = ANY(:codes) AND {_CURRENT}"
            ),
            {"kinds": kinds, "codes": sorted({c for _, c in keys})},
        )
        return {(r.kind, r.code): (r.version, _body(r.body)) for r in rows.all() if (r.kind, r.code) in keys}

    async def _insert_versions(
        self, conn: AsyncConnection, changes: list[tuple[str, str, Json | None]], now: datetime
    ) -> None:
        if not changes:
            return
        keys = [(k, c) for k, c, _ in changes]
        versions = await self._current(conn, set(keys))
        closing = [{"now": now, "kind": k, "code": c} for k, c in keys if (k, c) in versions]
        if closing:
            await conn.execute(
                text(
                    "UPDATE record_version SET valid_to = :now WHERE kind = :kind AND code = :code AND valid_to IS NULL"
                ),
                closing,
            )
        params = []
        outbox = []
        for kind, code, body in changes:
            version = versions.get((kind, code), (0, None))[0] + 1
            value = None if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
            params.append(
                {
                    "kind": kind,
                    "code": code,
                    "version": version,
                    "parent": None if body is None else parent_column(body),
                    "level": None if body is None else body.get("level"),
                    "body": value,
                    "now": now,
                }
            )
            outbox.append(self._changelog_record(kind, code, version, value, now))
        await conn.execute(
            text(
                "INSERT INTO record_version (kind, code, version, parent, level, body, valid_from) "
                "VALUES (:kind, :code, :version, :parent, :level, CAST(:body AS jsonb), :now)"
            ),
            params,
        )
        await enqueue(conn, outbox)

    def _changelog_record(
        self, kind: str, code: str, version: int, value: str | None, now: datetime
    ) -> OutRecord:
        key = key_of(kind, code)
        event = CloudEvent(
            type="cn.onegrid.registry.record_deleted.v1"
            if value is None
            else "cn.onegrid.registry.record_changed.v1",
            source=SOURCE,
            id=f"{key}:{version}",
            time=now,
            subject=key,
        )
        return OutRecord(
            topic=self.topic,
            key=key.encode(),
            value=None if value is None else value.encode(),
            headers=event.headers(),
        )


def _body(raw: Any) -> Any:
    return json.loads(raw) if isinstance(raw, str) else raw
