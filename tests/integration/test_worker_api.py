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
import io
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
from onegrid.topics import CASE_LIFECYCLE, LEGACY_PATROL

from .conftest import Ground, read_all
from .test_worker_app import GRID_A, HERE, WORKER_A, WORKER_B, png, whole_system

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.auth import ADMIN, token
from support.s3 import s3_server

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(900)]
T = TypeVar("T")


BUCKET = "onegrid-worker-photos"


@pytest.fixture(scope="module")
def system(system_ground: Ground, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The whole system with the console's photos in a real S3-compatible store (moto's server)."""
    pytest.importorskip("s3fs", reason="s3fs (the dev group) talks to S3-compatible stores")
    with (
        s3_server(BUCKET) as s3,
        whole_system(
            system_ground.kafka_bootstrap,
            system_ground.database_url,
            tmp_path_factory.mktemp("worker-api-run"),
            ONEGRID_CONSOLE_PHOTOS_URL=f"s3://{BUCKET}/city",
        ) as running,
    ):
        yield running | {"s3": s3}


@pytest.fixture(scope="module")
def kafka_settings(system_ground: Ground) -> KafkaSettings:
    """The module's own broker, where its system writes (not the session's)."""
    return KafkaSettings(bootstrap_servers=system_ground.kafka_bootstrap)


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


async def my_case(
    http: httpx.AsyncClient, console: str, tok: str, report_id: str, state: str | None = None
) -> dict[str, Any]:
    """The case of a report as the worker's My work lists it (once in `state`, if given: a case is
    listed as `reported` as soon as intake files it, before dispatch registers it)."""

    async def probe() -> dict[str, Any] | None:
        work = (await http.get(f"{console}/worker/api/work", headers=bearer(tok))).json()
        case = next((c for c in work["cases"] if c["source_id"] == report_id), None)
        return case if case is not None and state in (None, case["state"]) else None

    return await until(f"report {report_id} in the worker's work" + (f" as {state}" if state else ""), probe)


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
        waiting = await my_case(http, console, WORKER_A, first["report_id"], state="registered")
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


async def resolved_by_its_department(
    http: httpx.AsyncClient, dispatch: str, case_id: str, evidence: list[dict[str, Any]]
) -> None:
    """The department the case went to resolves it with `evidence` (feedback.v1, as its system sends)."""

    async def dispatched() -> dict[str, Any] | None:
        r = await http.get(f"{dispatch}/v1/cases/{case_id}", headers=ADMIN)
        return (
            r.json()["case"] if r.status_code == 200 and r.json()["case"]["state"] == "dispatched" else None
        )

    order = (await until(f"case {case_id} dispatched", dispatched))["orders"][-1]
    dept = order["department"]
    r = await http.post(
        f"{dispatch}/v1/feedback",
        json={
            "feedback_id": str(uuid.uuid4()),
            "order_id": order["order_id"],
            "case_id": case_id,
            "department": dept,
            "kind": "resolve",
            "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "actor": {"kind": "department", "id": dept, "display": ""},
            "note": "已修复。",
            "evidence": evidence,
            "return_reason": None,
        },
        headers=bearer(token("department_operator", departments=[dept], subject=dept)),
    )
    assert r.status_code == 200, r.text


async def test_the_case_page_shows_the_photos_and_a_departments_evidence_to_those_who_may_see_them(
    system: dict[str, Any], tmp_path: Path
) -> None:
    """Before: the case page listed hashes, a department's evidence was only counted, and any staff
    could read any photo by its hash."""
    from PIL import Image

    console, dispatch = system["urls"]["console"], system["urls"]["dispatch"]
    found = png(tmp_path / "road.png", width=800, height=600).read_bytes()
    fixed = png(tmp_path / "fixed.png", width=640, height=480, tint=200).read_bytes()
    async with httpx.AsyncClient(timeout=10) as http:
        sha, done = await upload(http, console, WORKER_A, found), await upload(http, console, WORKER_A, fixed)
        # a broken pavement is not left to the grid: it goes to its department
        body = report_body(GRID_A, "city.road_damage", (HERE[0] + 0.0012, HERE[1] - 0.0009), sha)
        assert (
            await http.post(f"{console}/worker/api/patrol", json=body, headers=bearer(WORKER_A))
        ).status_code == 202
        case_id = (await my_case(http, console, WORKER_A, body["report_id"]))["case_id"]
        elsewhere = "e1" * 32  # the department's own file, named by its hash, not in the console's store
        await resolved_by_its_department(
            http,
            dispatch,
            case_id,
            [
                {"ref": f"evidence/2026/12/04/{done}.png", "media_type": "image/png", "sha256": done, "taken_at": None},
                {"ref": f"evidence/2026/12/04/{elsewhere}.jpg", "media_type": "image/jpeg", "sha256": elsewhere, "taken_at": None},
                {"ref": "evidence/2026/12/04/work-order.pdf", "media_type": "application/pdf", "sha256": "0d" * 32, "taken_at": None},
            ],
        )  # fmt: skip

        async def page() -> dict[str, Any] | None:
            doc = (await http.get(f"{console}/api/cases/{case_id}", headers=ADMIN)).json().get("case") or {}
            return doc if len(doc.get("photos", [])) == 3 else None

        shown = await until("the department's evidence on the case page", page)
        assert [(p["sha256"], p["by"]) for p in shown["photos"]] == [
            (sha, "report"),
            (done, "resolve"),
            (elsewhere, "resolve"),
        ]
        assert [(e["ref"], e["by"]) for e in shown["evidence"]] == [
            ("evidence/2026/12/04/work-order.pdf", "resolve")
        ]

        base = f"{console}/api/cases/{case_id}/photos"
        thumb = await http.get(f"{base}/{sha}", headers=ADMIN)
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg", thumb.text[:200]
        with Image.open(io.BytesIO(thumb.content)) as im:
            assert im.format == "JPEG" and im.size == (320, 240)
        full = await http.get(f"{base}/{done}", params={"size": "full"}, headers=ADMIN)
        assert (
            full.status_code == 200 and full.content == fixed and full.headers["content-type"] == "image/png"
        )
        missing = await http.get(f"{base}/{elsewhere}", headers=ADMIN)
        assert missing.status_code == 404 and "not in the console's photo store" in missing.text
        assert (await http.get(f"{base}/{'ab' * 32}", headers=ADMIN)).status_code == 404  # not this case's

        # through the case, in the caller's scope only
        community = bearer(token("community_operator", scope=[GRID_A[:12]], subject="staff:community"))
        other_district = bearer(token("district_operator", scope=["321084"], subject="staff:gaoyou"))
        assert (await http.get(f"{base}/{sha}", headers=community)).status_code == 200
        assert (await http.get(f"{base}/{sha}", headers=other_district)).status_code == 404
        assert (await http.get(f"{base}/{sha}")).status_code == 401
        assert (
            await http.get(f"{console}/worker/api/photos/{done}", headers=bearer(WORKER_A))
        ).status_code == 200
        assert (
            await http.get(f"{console}/worker/api/photos/{done}", headers=bearer(WORKER_B))
        ).status_code == 404


async def test_the_worker_api_refuses_what_it_must_and_takes_a_resend_once(
    system: dict[str, Any], kafka_settings: KafkaSettings
) -> None:
    console, dispatch = system["urls"]["console"], system["urls"]["dispatch"]
    a, b = bearer(WORKER_A), bearer(WORKER_B)
    data = png_bytes(9090)
    sha = hashlib.sha256(data).hexdigest()
    async with httpx.AsyncClient(timeout=10) as http:
        # who: a token, of a role that reads cases; reports from those who patrol
        assert (await http.get(f"{console}/worker/api/me")).status_code == 401
        assert (
            await http.get(f"{console}/worker/api/me", headers={"Authorization": "Bearer x.y.z"})
        ).status_code == 401
        me = (await http.get(f"{console}/worker/api/me", headers=a)).json()
        assert me["subject"] == "grid_worker:gw-a" and [g["code"] for g in me["grids"]] == [GRID_A]
        auditor = bearer(token("auditor", subject="staff:auditor"))
        photo_url = f"{console}/worker/api/photos/{sha}"
        png_type = {"Content-Type": "image/png"}
        assert (await http.put(photo_url, content=data, headers=auditor | png_type)).status_code == 403

        # photos: the bytes must be their hash, a photo's type and size; nothing else is stored
        wrong = await http.put(f"{console}/worker/api/photos/{'ab' * 32}", content=data, headers=a | png_type)
        assert wrong.status_code == 422 and "SHA-256" in wrong.text
        assert (await http.put(photo_url, content=b"", headers=a | png_type)).status_code == 413
        big = b"\x89PNG" + bytes(2 * 1024 * 1024)
        big_url = f"{console}/worker/api/photos/{hashlib.sha256(big).hexdigest()}"
        assert (await http.put(big_url, content=big, headers=a | png_type)).status_code == 413
        gif = await http.put(photo_url, content=data, headers=a | {"Content-Type": "image/gif"})
        assert gif.status_code == 415
        listed = system["s3"].list_objects_v2(Bucket=BUCKET, Prefix=f"city/photos/ab/{'ab' * 32}")
        assert listed.get("KeyCount") == 0

        # reports: refused with the reason, each before anything is sent
        body = report_body(GRID_A, "city.street_vending", (HERE[0] - 0.002, HERE[1] + 0.002), sha)
        not_uploaded = await http.post(f"{console}/worker/api/patrol", json=body, headers=a)
        assert not_uploaded.status_code == 409 and f"PUT /worker/api/photos/{sha}" in not_uploaded.text
        assert (await http.put(photo_url, content=data, headers=a | png_type)).status_code == 200
        refusals = {
            "unknown category": (dict(body, category="city.unicorns"), 422),
            "the same photo twice": (dict(body, photos=body["photos"] * 2), 422),
            "seven photos": (dict(body, photos=body["photos"] * 7), 422),
            "no UTC offset": (dict(body, reported_at="2026-12-04T12:00:00"), 422),
            "no photo": (dict(body, photos=[]), 422),
            "outside China": (dict(body, location={"lat": 51.5, "lon": -0.1, "source": "gps"}), 422),
        }
        for why, (bad, status) in refusals.items():
            r = await http.post(f"{console}/worker/api/patrol", json=bad, headers=a)
            assert r.status_code == status, (why, r.status_code, r.text)
        assert (await http.post(f"{console}/worker/api/patrol", json=body, headers=b)).status_code == 403

        # a resend (the phone lost the answer) is taken once: one record on the patrol feed
        first = await http.post(f"{console}/worker/api/patrol", json=body, headers=a)
        again = await http.post(f"{console}/worker/api/patrol", json=body, headers=a)
        assert first.status_code == again.status_code == 202
        assert (first.json()["again"], again.json()["again"]) == (False, True)
        records = await read_all(kafka_settings, LEGACY_PATROL, timeout_s=15)
        assert [r.key.decode() for r in records].count(body["report_id"]) == 1

        # actions: in the worker's own name, on the worker's own cases, once per idempotency key
        case_id = (await my_case(http, console, WORKER_A, body["report_id"]))["case_id"]
        act = f"{console}/worker/api/cases/{case_id}"
        assert (await http.post(f"{act}/close", json={}, headers=a)).status_code == 404
        missing_photo = {"photos": [{"sha256": "cd" * 32, "media_type": "image/jpeg"}]}
        assert (await http.post(f"{act}/self_handle", json=missing_photo, headers=a)).status_code == 409
        assert (
            await http.post(f"{act}/escalate", json={"reason": "whistle.x"}, headers=b)
        ).status_code == 404
        assert (
            await http.post(f"{act}/escalate", json={"reason": "Not A Code"}, headers=a)
        ).status_code == 422
        key = {"Idempotency-Key": f"whistle-{body['report_id']}"}
        up = await http.post(f"{act}/escalate", json={"reason": "whistle.beyond_grid"}, headers=a | key)
        up_again = await http.post(f"{act}/escalate", json={"reason": "whistle.beyond_grid"}, headers=a | key)
        assert up.status_code == up_again.status_code == 200, (up.text, up_again.text)
        assert up.json()["state"] == up_again.json()["state"] == "escalated"
        moves = (await dispatch_state(http, dispatch, case_id))["transitions"]
        assert [t["action"] for t in moves].count("escalate") == 1, moves
        assert moves[-1]["action"] == "escalate"
