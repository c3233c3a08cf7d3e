"""The lake sink writes every lifecycle record exactly once, by local day, in files named from offsets:
a batch consumed again after a crash (files written, offsets not committed), with other boundaries,
leaves no duplicate and loses nothing; on a local directory and on object storage (fsspec memory://)."""

from __future__ import annotations

import io
import json
import uuid
import zlib
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from support import scripted_stream as script

from evaluation.lake import FsspecStore, LakeSink, LocalStore, ObjectStore, open_store
from onegrid.kafka.memory import MemoryBroker, MemoryRecord


def records() -> list[MemoryRecord]:
    broker = MemoryBroker(partitions=3)
    for body in [*script.stream(), *script.charged_stream()]:
        key = body["case_id"].encode()  # a stable partition per case (Python's hash() is salted)
        broker.append("lifecycle", json.dumps(body).encode(), key=key, partition=zlib.crc32(key) % 3)
    broker.append("lifecycle", b"{not json", key=b"k", partition=0)
    return broker.records("lifecycle")


def stores(tmp_path: Path) -> list[ObjectStore]:
    return [LocalStore(tmp_path / "lake"), FsspecStore(f"memory://lake-{uuid.uuid4().hex}")]


def read_back(store: ObjectStore) -> list[tuple[str, int, int, str]]:
    """(day, partition, offset, event_id) of every row of every lifecycle file."""
    out = []
    for path in store.list("lifecycle"):
        day = path.split("/")[1].removeprefix("day=")
        data = (
            store.fs.cat_file(f"{store.root}/{path}")
            if isinstance(store, FsspecStore)
            else (store.root / path).read_bytes()
        )  # type: ignore[attr-defined]
        for row in pq.read_table(io.BytesIO(data)).to_pylist():
            out.append((day, row["partition"], row["offset"], row["event_id"]))
    return out


@pytest.mark.parametrize("kind", ["local", "object"])
async def test_every_record_lands_once_by_day_even_after_a_batch_is_redone(tmp_path: Path, kind: str) -> None:
    store = stores(tmp_path)[0 if kind == "local" else 1]
    recs = records()
    by_p: dict[int, list[MemoryRecord]] = {}
    for r in recs:
        by_p.setdefault(r.partition, []).append(r)
    sink = LakeSink(store)
    # Batches of 5 per partition; the third batch of the largest partition is written but "crashes"
    # before its offsets are committed.
    big = max(by_p, key=lambda p: len(by_p[p]))
    assert len(by_p[big]) > 20
    crashed = by_p[big][10:15]
    for p, rs in by_p.items():
        upto = 15 if p == big else len(rs)
        for i in range(0, upto, 5):
            await sink.handle(rs[i : min(i + 5, upto)])
    assert any(f"p{big:03d}-{crashed[0].offset:020d}-" in path for path in store.list("lifecycle"))

    # A new instance resumes that partition from the last committed offset, in batches of 7.
    again = LakeSink(store)
    rest = by_p[big][10:]
    for i in range(0, len(rest), 7):
        await again.handle(rest[i : i + 7])

    rows = read_back(store)
    valid = [r for r in recs if r.value != b"{not json"]
    assert Counter((p, o) for _, p, o, _ in rows) == Counter((r.partition, r.offset) for r in valid)
    assert (
        sink.skipped + again.skipped == 1
    )  # the malformed record: the projector dead-letters it, the lake skips it
    # Days are Asia/Shanghai days of `at`: 01:00Z on 2 March is the 2nd, 18:00Z on the 5th is the 6th.
    days = {d for d, *_ in rows}
    assert days == {"2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06"}
    published_twice = Counter(e for *_, e in rows)
    assert sorted(published_twice.values())[-1] == 2  # the repeat dispatch published keeps its own offset


async def test_duckdb_reads_the_local_lake_with_day_partitions(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "lake"))
    assert isinstance(store, LocalStore)
    sink = LakeSink(store)
    await sink.handle(records())
    got = duckdb.sql(
        f"SELECT day, count(DISTINCT event_id) AS events, min(at_local) AS first_local "
        f"FROM read_parquet('{tmp_path}/lake/lifecycle/*/*.parquet', hive_partitioning = true) "
        "GROUP BY day ORDER BY day"
    ).fetchall()
    assert str(got[0][0]) == "2026-03-02"
    assert sum(n for _, n, _ in got) == len(script.stream()) - 1 + len(script.charged_stream())
    assert str(got[0][2]) == "2026-03-02 09:00:00"  # 01:00Z is 09:00 in Asia/Shanghai
