"""The grid worker's API in the console (`/worker/api/`) and the scripted demo day, over HTTP on the
whole system (`make up`'s code path on the session's broker and database; the browser's side is
test_worker_app.py), with the console's photos in a real S3-compatible store (moto's S3 server):

1. `make demo`'s day (`python -m simulators demo`, as the Makefile runs it after `up`): all five
   scenarios happen, the patrol report among them handled on the spot by the grid worker with before
   and after photos and verified by someone else;
2. handling on the spot only where the SLA allows it: a case the policy in force does not leave to
   the grid is not offered to the worker, and dispatch refuses its self-handling with the reason code.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from intake.domain.coords import haversine_m
from intake.domain.identity import case_id_for
from onegrid.settings import KafkaSettings
from onegrid.topics import CASE_LIFECYCLE

from .conftest import read_all
from .test_worker_app import GRID_A, HERE, WORKER_A, whole_system

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.auth import ADMIN
from support.s3 import s3_server

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(900)]
T = TypeVar("T")


BUCKET = "onegrid-worker-photos"


@pytest.fixture(scope="module")
def system(
    kafka_bootstrap: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The whole system with the console's photos in a real S3-compatible store (moto's server)."""
    pytest.importorskip("s3fs", reason="s3fs (the dev group) talks to S3-compatible stores")
    with (
        s3_server(BUCKET) as s3,
        whole_system(
            kafka_bootstrap,
            database_url,
            tmp_path_factory.mktemp("worker-api-run"),
            ONEGRID_CONSOLE_PHOTOS_URL=f"s3://{BUCKET}/city",
        ) as running,
    ):
        yield running | {"s3": s3}


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


async def until(what: str, probe: Callable[[], Awaitable[T | None]], tries: int = 240) -> T:
    """Polls `probe` every half second until it returns something; fails naming `what`."""
    for _ in range(tries):
        got = await probe()
        if got:
            return got
        await asyncio.sleep(0.5)
    raise AssertionError(f"never: {what}")


def png_bytes(seed: int) -> bytes:
    from simulators.patrol import photo

    return photo(seed)


async def upload(http: httpx.AsyncClient, console: str, tok: str, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    r = await http.put(
        f"{console}/worker/api/photos/{sha}",
        content=data,
        headers=bearer(tok) | {"Content-Type": "image/png"},
    )
    assert r.status_code == 200, r.text
    return sha


def report_body(
    grid: str, category: str, point: tuple[float, float], sha: str, severity: str = "IV"
) -> dict[str, Any]:
    return {
        "report_id": str(uuid.uuid4()),
        "grid_code": grid,
        "category": category,
        "description": f"{category}\n巡查发现。",
        "severity": severity,
        "location": {"lat": point[0], "lon": point[1], "source": "gps"},
        "photos": [{"sha256": sha, "media_type": "image/png"}],
        "reported_at": datetime.now(UTC).isoformat(),
    }


async def my_case(http: httpx.AsyncClient, console: str, tok: str, report_id: str) -> dict[str, Any]:
    """The case of a report as the worker's My work lists it."""

    async def probe() -> dict[str, Any] | None:
        work = (await http.get(f"{console}/worker/api/work", headers=bearer(tok))).json()
        return next((c for c in work["cases"] if c["source_id"] == report_id), None)

    return await until(f"report {report_id} in the worker's work", probe)


async def dispatch_state(http: httpx.AsyncClient, dispatch: str, case_id: str) -> dict[str, Any]:
    r = await http.get(f"{dispatch}/v1/cases/{case_id}", headers=ADMIN)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_the_demo_day_handles_a_patrol_report_on_the_spot(
    system: dict[str, Any],
    kafka_settings: KafkaSettings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from simulators.demo import run_demo
    from simulators.endpoints import load

    code = await run_demo(load(), timeout_s=300, seed=7)
    out = capsys.readouterr().out
    assert code == 0, out[-4000:]
    line = next((x for x in out.splitlines() if x.strip().startswith("OK   patrol")), None)
    assert line is not None, out[-4000:]
    found = re.search(r"case ([0-9a-f-]{36}): (.*)$", line)
    assert found is not None and found.group(2).startswith("registered -> resolved"), line
    # the grid worker handled it with before and after photos; someone else checked it
    records = await read_all(kafka_settings, CASE_LIFECYCLE, timeout_s=20)
    events = sorted(
        (e for e in (json.loads(r.value) for r in records) if e["case_id"] == found.group(1)),
        key=lambda e: e["seq"],
    )
    handled = next(e for e in events if e["action"] == "self_handle")
    assert len(handled.get("evidence") or []) == 2, handled
    checks = [e for e in events if e["action"] == "verify"]
    assert checks and all(e["actor"]["id"] != handled["actor"]["id"] for e in checks), events
    # the photos are in the S3-compatible store, under their hash, as images
    for ref in handled["evidence"]:
        head = system["s3"].head_object(Bucket=BUCKET, Key=f"city/{ref}")
        assert head["ContentType"] == "image/png", ref


async def test_handling_on_the_spot_only_where_the_sla_allows_it(system: dict[str, Any]) -> None:
    """A parked car blocking a fire lane is left to the grid by the seed's SLA; a policy that stops
    allowing it takes the action off the worker's screen and dispatch refuses it with its reason."""
    from simulators.patrol import spots

    console, registry = system["urls"]["console"], system["urls"]["grid-registry"]
    dispatch = system["urls"]["dispatch"]
    policy = f"test-parking-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=10) as http:
        sha = await upload(http, console, WORKER_A, png_bytes(4242))
        near = (HERE[0] - 0.0006, HERE[1] - 0.0004)
        first = report_body(GRID_A, "city.illegal_parking", near, sha)
        assert (
            await http.post(f"{console}/worker/api/patrol", json=first, headers=bearer(WORKER_A))
        ).status_code == 202
        waiting = await my_case(http, console, WORKER_A, first["report_id"])
        assert waiting["expected"] == "self_handle" and waiting["department"] is None, waiting
        try:
            r = await http.put(
                f"{registry}/v1/records/sla_policy/{policy}",
                json={
                    "name": "测试：违章停车交部门处置",
                    "active": True,
                    "match": {"category_codes": ["city.illegal_parking"], "severity_levels": [4]},
                    "acknowledge_within_s": 4 * 3600,
                    "resolve_within_s": 45 * 3600,
                    "calendar": "24x7",
                },
                headers=ADMIN,
            )
            assert r.status_code in (200, 201), r.text

            # the console's view follows the registry: the action leaves the worker's screen
            async def not_offered() -> bool:
                again = await my_case(http, console, WORKER_A, first["report_id"])
                return again["expected"] == "follow"

            await until("the self-handling no longer offered", not_offered)

            # dispatch's view has the policy once a new parking case far away goes to a department
            far = max(spots(limit=60), key=lambda s: haversine_m(s.lat, s.lon, *HERE))
            second = report_body(far.grid, "city.illegal_parking", (far.lat, far.lon), sha)
            assert (
                await http.post(f"{console}/worker/api/patrol", json=second, headers=ADMIN)
            ).status_code == 202

            second_id = str(case_id_for("patrol", second["report_id"]))  # its own case: far from any

            async def routed() -> dict[str, Any] | None:
                r = await http.get(f"{dispatch}/v1/cases/{second_id}", headers=ADMIN)
                return r.json()["case"] if r.status_code == 200 else None

            second_case = await until("the second report's case at dispatch", routed)
            assert second_case.get("department"), second_case

            refused = await http.post(
                f"{console}/worker/api/cases/{waiting['case_id']}/self_handle",
                json={
                    "reason": "self_handle.on_spot",
                    "photos": [{"sha256": sha, "media_type": "image/png"}],
                },
                headers=bearer(WORKER_A),
            )
            assert refused.status_code == 409, refused.text
            assert refused.json()["outcome"] == "refused:self_handle.category_not_allowed", refused.text
            assert "city.illegal_parking" in refused.json()["detail"]
            still = await dispatch_state(http, dispatch, waiting["case_id"])
            assert still["case"]["state"] == "registered"
            # what the worker may still do: report it up
            up = await http.post(
                f"{console}/worker/api/cases/{waiting['case_id']}/escalate",
                json={"reason": "whistle.beyond_grid"},
                headers=bearer(WORKER_A),
            )
            assert up.status_code == 200 and up.json()["state"] == "escalated", up.text
        finally:
            await http.delete(f"{registry}/v1/records/sla_policy/{policy}", headers=ADMIN)
