"""The registry's versions in PostgreSQL (`dimension_version`), fed by a consumer loop on
grid.registry.v1: the slowly changing dimensions BI joins the facts with, and the units that get
zero rows.

Contract: `handle` stores each version once per (kind, code, revision) (a replay changes nothing),
closes the previous version's validity at the next one's `updated_at`, and closes the open version
at the record timestamp of a tombstone. A record that is not a registry record is dead-lettered with
its reason. The compacted topic keeps only the latest version of each record: versions compacted away
before evaluation first read them are not recovered, so intervals start where evaluation's history
starts (the registry's own changelog has the rest).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from evaluation.domain.dimensions import KINDS, InvalidRecord, Version, version_of
from onegrid.kafka import BatchResult, DeadLetter, Record

log = logging.getLogger(__name__)


class Dimensions:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def handle(self, records: Sequence[Record]) -> BatchResult:
        result = BatchResult()
        versions: list[Version] = []
        deletions: list[tuple[str, str, datetime]] = []
        for r in records:
            kind, _, code = (r.key or b"").decode("utf-8", "replace").partition(":")
            if kind not in KINDS.values():
                continue  # stations, routing rules, SLAs: not dimensions of the figures
            if r.value is None:
                deletions.append((kind, code, datetime.fromtimestamp(r.timestamp / 1000, UTC)))
                continue
            try:
                v = version_of(json.loads(r.value))
            except (ValueError, InvalidRecord) as e:
                result.dead_letters.append(
                    DeadLetter(r, "evaluation.registry_record_invalid", str(e), "decode")
                )
                continue
            versions.append(v)
        await self.store(versions, deletions)
        return result

    async def store(
        self, versions: Sequence[Version], deletions: Sequence[tuple[str, str, datetime]] = ()
    ) -> None:
        if not versions and not deletions:
            return
        touched = sorted({(v.kind, v.code) for v in versions} | {(k, c) for k, c, _ in deletions})
        async with self._engine.begin() as conn:
            if versions:
                await conn.execute(
                    text(
                        "INSERT INTO dimension_version (kind, code, revision, valid_from, record) "
                        "VALUES (:k, :c, :r, :f, CAST(:rec AS jsonb)) ON CONFLICT DO NOTHING"
                    ),
                    [
                        {
                            "k": v.kind,
                            "c": v.code,
                            "r": v.revision,
                            "f": v.valid_from,
                            "rec": json.dumps(v.record),
                        }
                        for v in versions
                    ],
                )
            for kind, code, at in deletions:
                await conn.execute(
                    text(
                        "UPDATE dimension_version SET valid_to = :at, deleted = true WHERE kind = :k AND code = :c "
                        "AND valid_to IS NULL AND revision = (SELECT max(revision) FROM dimension_version "
                        "WHERE kind = :k AND code = :c)"
                    ),
                    {"k": kind, "c": code, "at": at},
                )
            await conn.execute(
                text(
                    "UPDATE dimension_version d SET valid_to = n.next_from, deleted = false FROM ("
                    "  SELECT kind, code, revision, lead(valid_from) OVER (PARTITION BY kind, code ORDER BY revision)"
                    "  AS next_from FROM dimension_version WHERE kind = ANY(CAST(:k AS text[])) "
                    "  AND code = ANY(CAST(:c AS text[]))) n "
                    "WHERE d.kind = n.kind AND d.code = n.code AND d.revision = n.revision AND n.next_from IS NOT NULL "
                    "AND d.valid_to IS DISTINCT FROM n.next_from"
                ),
                {"k": [k for k, _ in touched], "c": [c for _, c in touched]},
            )

    async def versions(self, kind: str) -> list[tuple[Version, datetime | None]]:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                text(
                    "SELECT record::text, valid_to FROM dimension_version WHERE kind = :k ORDER BY code, revision"
                ),
                {"k": kind},
            )
            return [(version_of(json.loads(rec)), valid_to) for rec, valid_to in result.all()]

    async def unit_intervals(self, kind: str) -> list[tuple[str, datetime, datetime | None]]:
        return await unit_intervals(self._engine, kind)


async def unit_intervals(engine: AsyncEngine, kind: str) -> list[tuple[str, datetime, datetime | None]]:
    """(code, valid_from, valid_to) of every active version of `kind`."""
    async with engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT code, valid_from, valid_to FROM dimension_version WHERE kind = :k "
                "AND (record->>'active')::boolean ORDER BY code, revision"
            ),
            {"k": kind},
        )
        return [(str(c), f, t) for c, f, t in result.all()]
