"""The lake and the DuckDB example of the BI guide on the real broker and PostgreSQL.

The registry (departments, grids, a grid worker) and the scripted lifecycle stream (eight cases, plus
case J: returned by two departments, whistled at after a reassignment, a failed verification) are
published to unique topics. The evaluation service consumes them from offset zero; its lake sink
writes the stream, and a `rebuild` (a replay of the topic from offset zero) rewrites the facts.
Then the guide's DuckDB example, exactly as written in contracts/bi/README.md, run on the lake gives
every row of the service's GET /v1/metrics, zero rows included, column for column."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import uuid
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import httpx
import pyarrow.parquet as pq
import uvicorn
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from support import scripted_stream as script
from support.auth import ADMIN, bearer

from devstack.paths import free_port
from evaluation.bootstrap import bootstrap
from evaluation.domain.metrics import COLUMNS, LISTS
from evaluation.rebuild import rebuild
from evaluation.settings import Settings
from onegrid.db import make_engine
from onegrid.settings import KafkaSettings

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"lake_{name}", ROOT / f"tests/unit/evaluation/{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


guide = _load("duckdb_guide")


async def publish(kafka: KafkaSettings, topic: str, records: list[tuple[bytes, bytes | None]]) -> None:
    producer = AIOKafkaProducer(**kafka.client_kwargs())
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def until(check: Any, what: str, timeout_s: float = 90.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def lake_events(lake: Path) -> list[tuple[int, int, str]]:
    files = lake / "lifecycle"
    if not files.exists():
        return []
    return [
        tuple(r)  # type: ignore[misc]
        for r in duckdb.sql(
            f"SELECT partition, \"offset\", event_id FROM read_parquet('{files.as_posix()}/*/*.parquet')"
        ).fetchall()
    ]


def api_row(row: dict[str, Any]) -> dict[str, Any]:
    row = {c: row[c] for c in COLUMNS}
    row["period_start"] = date.fromisoformat(row["period_start"])
    for c in LISTS:
        row[c] = tuple(row[c])
    if row["last_event_at"] is not None:
        row["last_event_at"] = datetime.fromisoformat(row["last_event_at"].replace("Z", "+00:00"))
    return row


async def test_the_guides_duckdb_example_on_the_lake_reproduces_the_service_exactly(
    kafka_settings: KafkaSettings, database_url: str, topics: Any, tmp_path: Path
) -> None:
    topic = await topics("lifecycle", partitions=3)
    dlq = await topics("evaluation-dlq")
    registry = await topics("registry")
    suffix = uuid.uuid4().hex[:10]
    lake = tmp_path / "lake"
    settings = Settings(
        database_url="postgresql+asyncpg://" + database_url.split("://", 1)[1],
        db_schema=f"evaluation_l_{suffix}",
        service_name=f"evaluation-l-{suffix}",
        lifecycle_topic=topic,
        dlq_topic=dlq,
        registry_topic=registry,
        lake_url=str(lake),
        kafka=kafka_settings,
        http_port=free_port(),
        commit_interval_s=0.1,
    )
    await publish(
        kafka_settings,
        registry,
        [(f"{r['kind']}:{r['code']}".encode(), json.dumps(r).encode()) for r in script.registry_records()],
    )
    bodies = [*script.stream(), *script.charged_stream()]
    unique = len({(b["case_id"], b["seq"]) for b in bodies})
    await publish(kafka_settings, topic, [(b["case_id"].encode(), json.dumps(b).encode()) for b in bodies])

    app = bootstrap(settings).app
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.http_port, log_config=None))
    serving = asyncio.create_task(server.serve())
    engine = make_engine(settings.database_url, settings.db_schema, pool_size=1)

    async def stored() -> bool:
        async with engine.connect() as conn:
            return bool(
                (await conn.execute(text("SELECT count(*) FROM lifecycle_event"))).scalar_one() == unique
            )

    async def in_lake() -> bool:
        return len(lake_events(lake)) == len(bodies)

    async def dimensions() -> bool:
        return all((lake / "dimensions" / f"{n}.parquet").exists() for n in ("departments", "grids", "staff"))

    try:
        while not server.started:
            assert not serving.done(), "the service did not start"
            await asyncio.sleep(0.05)
        await until(stored, "the projector")
        await until(in_lake, "the lake sink")
        await until(dimensions, "the registry")
        report = await rebuild(settings)  # a replay from offset zero rewrites the facts in the lake
        assert (report.stored, report.repeats) == (unique, 1)

        # The stream: every record once, by offset; the one dispatch published twice keeps both offsets.
        events = lake_events(lake)
        assert len(set((p, o) for p, o, _ in events)) == len(events) == len(bodies)
        assert sorted(Counter(e for *_, e in events).values())[-2:] == [1, 2]

        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{settings.http_port}", headers=ADMIN
        ) as http:
            got = (await http.get("/v1/metrics", params={"limit": 100_000})).json()
            service = {
                (
                    r["dimension"],
                    r["value"],
                    r["granularity"],
                    date.fromisoformat(r["period_start"]),
                ): api_row(r)
                for r in got["rows"]
            }
            # Zero rows: minzheng and the empty grid have no case, and still a row.
            assert service[("department", "minzheng", "month", date(2026, 3, 1))]["registered"] == 0
            assert service[("grid", "321003010009009", "month", date(2026, 3, 1))]["registered"] == 0
            assert ("department", "wenlv", "day", date(2026, 3, 4)) not in service  # wound up on the 3rd
            # Charged to the actor, through the whole system (hand figures in scripted_stream.CHARGED).
            sifa = service[("department", "sifa", "day", date(2026, 3, 5))]
            assert {c: sifa[c] for c in script.CHARGED["sifa"]} == script.CHARGED["sifa"]

            staff_masked = (
                await http.get("/v1/dimensions/staff", headers=bearer("bi_reader", scope=["321003"]))
            ).json()
            staff_full = (await http.get("/v1/dimensions/staff")).json()
            assert [(r["name"], r["phone"]) for r in staff_masked["rows"]] == [("王*", None)]
            assert [(r["name"], r["phone"]) for r in staff_full["rows"]] == [("王小明", "13800000000")]
            wenlv = [
                (r["revision"], r["valid_to"], r["current"])
                for r in (await http.get("/v1/dimensions/departments")).json()["rows"]
                if r["code"] == "wenlv"
            ]
            assert wenlv == [(1, "2026-03-03T00:00:00Z", False), (2, None, True)]

            # The same facts in bulk over the API, scoped: one row per department stint of case J.
            bulk = await http.get("/v1/facts/stints.parquet", params={"from": "2026-03-05"})
            j_stints = pq.read_table(io.BytesIO(bulk.content)).to_pylist()
            assert [(r["department"], r["returns"], r["whistles"], r["reworks"]) for r in j_stints] == [
                ("sifa", 1, 0, 0),
                ("gongan", 1, 0, 0),
                ("chengguan", 0, 0, 1),
                ("zhujian", 0, 1, 0),
            ]
            other_street = await http.get(
                "/v1/facts/cases.parquet",
                params={"from": "2026-03-02", "to": "2026-03-06", "scope": f"street:{script.S2}"},
            )
            assert {r["street"] for r in pq.read_table(io.BytesIO(other_street.content)).to_pylist()} == {
                script.S2
            }

        # The lake's dimensions are for readers without personal-data rights.
        lake_staff = pq.read_table(lake / "dimensions" / "staff.parquet").to_pylist()
        assert [(r["name"], r["phone"]) for r in lake_staff] == [("王*", None)]
        # The facts files say what they reflect: the whole topic.
        cases_file = next((lake / "facts" / "cases").glob("day=2026-03-05/*.parquet"))
        as_of = json.loads(pq.read_metadata(cases_file).metadata[b"onegrid.as_of"])
        assert sum(as_of["source"]["next_offsets"].values()) == len(bodies)
        assert as_of["source"]["next_offsets"] == got["as_of"]["source"]["next_offsets"]
        stints = pq.read_table(
            io.BytesIO(next((lake / "facts" / "stints").glob("day=2026-03-05/*")).read_bytes())
        )
        assert [r["department"] for r in stints.to_pylist()] == ["sifa", "gongan", "chengguan", "zhujian"]

        example = guide.run_guide(lake)
        assert set(example) == set(service)
        for k, row in service.items():
            assert {c: example[k][c] for c in COLUMNS} == row, k
    finally:
        server.should_exit = True
        await serving
        await engine.dispose()
