"""The registry's use cases: validate a change against the record rules and the stored neighbours,
store it as a new version with its changelog record in one transaction, and nudge the outbox relay.

Every refusal is a `RecordRejected` naming the problem (the API turns it into a 4xx). A batch (GeoJSON
import) is all or nothing, and its records may refer to each other: a parent, a sibling or a
reference may be in the batch instead of the store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from shapely.geometry import shape
from sqlalchemy.ext.asyncio import AsyncConnection

from grid_registry.domain.records import (
    RecordRejected,
    check_placement,
    check_record,
    placement,
    references,
    unknown_reference,
)
from grid_registry.store import RecordStore, Written, utc_text
from onegrid.geo import Area
from onegrid.outbox import OutboxRelay

Json = dict[str, Any]
SERVER_FIELDS = ("revision", "updated_at")


DepartmentsHook = Callable[[Sequence[str]], Awaitable[None]]


class Registry:
    """``on_departments`` is awaited with the codes of the departments a write registers or changes,
    after validation and before the commit (never on delete): the composition root creates their
    orders topics there, so a department is never registered without its topic (if the topic cannot
    be created the write fails and nothing is stored). Creating a topic is idempotent."""

    def __init__(
        self,
        store: RecordStore,
        *,
        categories: Iterable[str],
        relay: OutboxRelay | None = None,
        on_departments: DepartmentsHook | None = None,
    ) -> None:
        self.store = store
        self.categories = frozenset(categories)
        self.relay = relay
        self.on_departments = on_departments

    async def put(
        self, kind: str, code: str, payload: Json, *, if_match: int | None = None, create: bool = False
    ) -> Written:
        """Create or replace one record. `create`: refuse when it exists (409); `if_match`: refuse unless
        the current revision is that one (412)."""
        body = {**{k: v for k, v in payload.items() if k not in SERVER_FIELDS}, "kind": kind, "code": code}
        for field in ("kind", "code"):
            if field in payload and payload[field] != body[field]:
                raise RecordRejected(
                    "invalid",
                    f"record.{field}_mismatch",
                    f"body {field} {payload[field]!r} != URL {body[field]!r}",
                )
        async with self.store.writing() as conn:
            current = await self.store.get(kind, code, conn=conn)
            if create and current is not None:
                raise RecordRejected(
                    "conflict", "record.exists", f"{kind} {code} exists (revision {current['revision']})"
                )
            if if_match is not None and (current is None or current["revision"] != if_match):
                have = None if current is None else current["revision"]
                raise RecordRejected(
                    "precondition",
                    "record.revision_mismatch",
                    f"{kind} {code} is at revision {have}, not {if_match}",
                )
            [written] = await self._write(conn, [body])
            await self._departments_written([body])
        self._wake()
        return written

    async def delete(self, kind: str, code: str, *, if_match: int | None = None) -> None:
        """Delete one record (a tombstone on the changelog); refused while children refer to it."""
        async with self.store.writing() as conn:
            current = await self.store.get(kind, code, conn=conn)
            if current is None:
                raise RecordRejected("not_found", "record.not_found", f"no {kind} {code}")
            if if_match is not None and current["revision"] != if_match:
                raise RecordRejected(
                    "precondition",
                    "record.revision_mismatch",
                    f"{kind} {code} is at revision {current['revision']}, not {if_match}",
                )
            if kind in ("division", "grid", "department"):
                children = await self.store.children(conn, code)
                if children:
                    raise RecordRejected(
                        "conflict", "reference.in_use", f"{kind} {code} still has {', '.join(children)}"
                    )
            await self.store.delete(conn, kind, code)
        self._wake()

    async def put_batch(self, bodies: Sequence[Json]) -> list[Written]:
        """Validate every record (against each other and the store) and store them all, or none."""
        bodies = [{k: v for k, v in b.items() if k not in SERVER_FIELDS} for b in bodies]
        async with self.store.writing() as conn:
            written = await self._write(conn, bodies)
            await self._departments_written(bodies)
        self._wake()
        return written

    async def seed(self, bodies: Sequence[Json]) -> int:
        """Store generated, unit-tested seed records without neighbour checks (start-up stays fast);
        unchanged records are skipped, so seeding twice is no change. Returns the number changed."""
        async with self.store.writing() as conn:
            written = await self.store.put_many(conn, bodies)
            await self._departments_written(bodies)
        self._wake()
        return sum(w.changed for w in written)

    async def _departments_written(self, bodies: Sequence[Json]) -> None:
        codes = sorted({b["code"] for b in bodies if b.get("kind") == "department"})
        if codes and self.on_departments is not None:
            await self.on_departments(codes)

    async def _write(self, conn: AsyncConnection, bodies: list[Json]) -> list[Written]:
        stamp = {"revision": 1, "updated_at": utc_text(datetime.now(UTC))}
        areas: dict[tuple[str, str], Area] = {}
        for body in bodies:
            area = check_record({**body, **stamp})
            if area is not None:
                areas[(body["kind"], body["code"])] = area
            self._check_categories(body)
        await self._check_references(conn, bodies)
        await self._check_placements(conn, bodies, areas)
        return await self.store.put_many(conn, bodies)

    def _check_categories(self, body: Json) -> None:
        named = list(body.get("match", {}).get("category_codes", [])) + list(body.get("category_codes", []))
        unknown = sorted(set(named) - self.categories)
        if unknown:
            raise RecordRejected("reference", "reference.unknown_category", f"not in the taxonomy: {unknown}")

    async def _check_references(self, conn: AsyncConnection, bodies: list[Json]) -> None:
        in_batch = {(b["kind"], b["code"]) for b in bodies}
        needed: dict[str, dict[str, str]] = {}
        for body in bodies:
            for kind, code, field in references(body):
                if (kind, code) not in in_batch:
                    needed.setdefault(kind, {}).setdefault(code, field)
        for kind, codes in needed.items():
            missing = sorted(set(codes) - await self.store.existing(conn, kind, codes))
            if missing:
                raise unknown_reference(kind, missing[0], codes[missing[0]])

    async def _check_placements(
        self, conn: AsyncConnection, bodies: list[Json], areas: dict[tuple[str, str], Area]
    ) -> None:
        by_key = {(b["kind"], b["code"]): b for b in bodies}
        # sibling groups: (kind, parent code, level) -> {code: area}, stored ones overlaid by the batch
        batch_groups: dict[tuple[str, str, str], dict[str, Area]] = {}
        for (kind, code), area in areas.items():
            place = placement(by_key[(kind, code)])
            if place is not None:
                batch_groups.setdefault((kind, place.parent_code, by_key[(kind, code)]["level"]), {})[
                    code
                ] = area
        stored: dict[tuple[str, str, str], dict[str, Area]] = {}
        for key, area in sorted(areas.items()):
            place = placement(by_key[key])
            if place is None:
                continue
            parent_key = (place.parent_kind, place.parent_code)
            parent_area = areas.get(parent_key)
            if parent_area is None and parent_key not in by_key:
                parent = await self.store.get(*parent_key, conn=conn)
                parent_area = None if parent is None or parent.get("area") is None else shape(parent["area"])
            siblings: dict[str, Area] = {}
            for level in place.sibling_levels:
                group = (key[0], place.parent_code, level)
                if group not in stored:
                    found = await self.store.areas(conn, key[0], place.parent_code, [level])
                    stored[group] = {c: shape(a) for c, a in found.items()}
                siblings.update(stored[group])
                siblings.update(batch_groups.get(group, {}))
            parent_pair = None if parent_area is None else (place.parent_code, parent_area)
            check_placement(key[1], area, parent_pair, siblings)

    def _wake(self) -> None:
        if self.relay is not None:
            self.relay.wake()
