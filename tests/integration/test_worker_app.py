"""The grid worker's phone app (console /worker/) on the whole system (`make up`'s code path on a
broker and database of its own), driven in headless Chromium at 360 x 640 as a worker uses it:

1. worker A signs in with a grid-worker token, goes offline, files a patrol report with a photo
   (downscaled and hashed on the phone, queued in IndexedDB), comes back online: the queue is sent
   once and the case appears in My work (intake -> cases -> console), with the photo's hash in the
   case's audit trail as the console's case page shows it;
2. A handles that small case on the spot with before and after photos (dispatch: resolved, the
   photos' refs in the lifecycle event); A cannot also verify it (dispatch refuses: someone else must);
3. a department resolves another case of A's grid; A verifies it with a photo and a note: closed;
4. worker B of another grid sees none of A's cases and cannot report for A's grid;
5. the console's case page shows the case's photos as thumbnails the console makes.
Screenshots of every screen, in Chinese, are written to .run/screenshots/worker-app/.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.paths import free_port

from .conftest import Ground
from .test_console import chromium_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.auth import token
from support.cdp import Page, phone

# The whole system starts once for the module (about 80 s on a loaded 2-core machine), then each
# scenario drives a real browser through it.
pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / ".run" / "screenshots" / "worker-app"
GRID_A = "321003103210004"  # 军桥村委会第4网格 (reference seed), around (32.3942, 119.4129)
GRID_B = "321003001001001"  # 冯庄居委会第1网格, elsewhere in Hanjiang
HERE = (32.3942, 119.4129)
WORKER_A = token("grid_worker", scope=[GRID_A], subject="grid_worker:gw-a", ttl_s=4 * 3600)
WORKER_B = token("grid_worker", scope=[GRID_B], subject="grid_worker:gw-b", ttl_s=4 * 3600)
ADMIN = {"Authorization": "Bearer " + token("admin", subject="admin:test", ttl_s=4 * 3600)}


def chromium_with_chinese() -> str:
    """Chromium (installed when missing, as for the console's test) and a Chinese font for the
    screenshots: the project's setup script installs fonts-wqy-zenhei; skip, saying why, if it can't."""
    chromium = chromium_path()

    def has_font() -> bool:
        out = (
            subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True)
            if shutil.which("fc-list")
            else None
        )
        return bool(out and out.stdout.strip())

    if not has_font():
        done = subprocess.run(
            ["sh", str(ROOT / "deploy/local/install-chromium.sh")],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if not has_font():
            pytest.skip(
                f"no Chinese font for the screenshots and none could be installed: {done.stderr.strip()[-400:]}"
            )
    return chromium


def payloads(story: httpx.Response) -> str:
    """Every recorded payload of a case's audit story, decoded, one per line."""
    entries = story.json().get("entries", []) if story.status_code == 200 else []
    return "\n".join(base64.b64decode(e.get("payload") or "").decode(errors="replace") for e in entries)


def png(path: Path, width: int = 800, height: int = 600, tint: int = 0) -> Path:
    """A real photo stand-in: an RGB gradient PNG, written without an image library."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, tint)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    head = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", head)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return path


@contextlib.contextmanager
def whole_system(
    kafka_bootstrap: str, database_url: str, run: Path, **extra_env: str
) -> Iterator[dict[str, Any]]:
    """Every service as `make up` starts it, on the given broker and database (a module's
    `system_ground`: nothing another module's system filed is there; `extra_env`: settings of the
    services, e.g. the console's photo store)."""
    from devstack import stack as stack_mod

    env = {
        "ONEGRID_RUN": str(run),
        "ONEGRID_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "ONEGRID_BRIDGES_HJ212_PORT": str(free_port()),
        **{svc.port_env: str(free_port()) for svc in stack_mod.SERVICES},
        **extra_env,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    stack = stack_mod.Stack()
    try:
        stack.up()
        endpoints = json.loads((run / "endpoints.json").read_text())
        yield {"urls": endpoints["services"], "run": run}
    finally:
        stack.down()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def system(system_ground: Ground, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    run = tmp_path_factory.mktemp("worker-app-run")
    with whole_system(system_ground.kafka_bootstrap, system_ground.database_url, run) as running:
        yield running


@contextlib.asynccontextmanager
async def app_for(chromium: str, console: str, profile: Path) -> AsyncIterator[Page]:
    async with phone(chromium, profile, origin=console) as page:
        await page.send(
            "Emulation.setGeolocationOverride", {"latitude": HERE[0], "longitude": HERE[1], "accuracy": 8}
        )
        yield page


async def signed_in(page: Page, console: str, worker_token: str) -> None:
    await page.goto(f"{console}/worker/#token={worker_token}")
    await page.until("document.body.dataset.screen === 'work'", "the work screen")
    await page.until("!!(window.onegridWorker && window.onegridWorker.state.grids)", "my grid loaded")


async def queue_sent(page: Page) -> None:
    await page.js("window.onegridWorker.sync()")
    await page.until(
        "(async () => { const r = indexedDB.open('onegrid-worker', 1); await new Promise(k => r.onsuccess = k);"
        " const tx = r.result.transaction('outbox'); const q = tx.objectStore('outbox').count();"
        " await new Promise(k => q.onsuccess = k); return q.result === 0; })()",
        "the outbox sent and empty",
    )


async def dispatch_case(http: httpx.AsyncClient, dispatch: str, case_id: str, state: str) -> dict[str, Any]:
    for _ in range(240):
        r = await http.get(f"{dispatch}/v1/cases/{case_id}", headers=ADMIN)
        if r.status_code == 200 and r.json()["case"]["state"] == state:
            return dict(r.json())
        await asyncio.sleep(0.5)
    raise AssertionError(f"case {case_id} never reached {state}: {r.status_code} {r.text[:500]}")


async def test_a_worker_reports_offline_handles_on_the_spot_and_verifies(
    system: dict[str, Any], tmp_path: Path
) -> None:
    chromium = chromium_with_chinese()
    console, dispatch = system["urls"]["console"], system["urls"]["dispatch"]
    photo = png(tmp_path / "found.png")
    before, after = png(tmp_path / "before.png", tint=60), png(tmp_path / "after.png", tint=200)
    async with (
        app_for(chromium, console, tmp_path / "profile") as page,
        httpx.AsyncClient(timeout=10) as http,
    ):
        await page.goto(f"{console}/worker/")
        await page.until("document.body.dataset.screen === 'signin'", "the sign-in screen")
        await page.screenshot(SHOTS / "01-登录-signin.png")
        # installable: the manifest and the service worker scoped to /worker/
        manifest = (await http.get(f"{console}/worker/manifest.webmanifest")).json()
        assert manifest["start_url"] == "/worker/" and manifest["display"] == "standalone"
        await signed_in(page, console, WORKER_A)
        assert await page.until(
            "navigator.serviceWorker.ready.then(r => r.active && r.scope.endsWith('/worker/'))",
            "service worker",
        )
        await page.screenshot(SHOTS / "02-我的任务-my-work.png")

        # -- 1. a patrol report filed offline --------------------------------------------------------
        await page.offline(True)
        await page.until("navigator.onLine === false", "the phone offline")
        await page.js("location.hash = '#report'")
        await page.type("#category-search", "垃圾")
        await page.click("#category-choices [data-code='city.garbage']")
        await page.type("#description", "文昌西路垃圾堆放\n路口东侧约三袋生活垃圾，影响通行。")
        await page.click("#use-gps")
        await page.until("document.body.textContent.includes('(gps)')", "the GPS fix")
        await page.pick_files("#report-photos", photo)
        await page.until(
            "document.querySelectorAll('#report .thumbs img').length === 1", "the photo downscaled"
        )
        await page.screenshot(SHOTS / "03-巡查上报-patrol-report.png")
        await page.click("#submit-report")
        await page.until("!!document.querySelector('#outbox [data-kind=patrol]')", "the report queued")
        await page.screenshot(SHOTS / "04-待同步-outbox-offline.png")
        report_id = await page.js("document.querySelector('#outbox [data-kind=patrol]').dataset.key")
        queued = await page.js(
            "(async () => { const r = indexedDB.open('onegrid-worker', 1); await new Promise(k => r.onsuccess = k);"
            " const q = r.result.transaction('outbox').objectStore('outbox').getAll();"
            " await new Promise(k => q.onsuccess = k); return q.result.map(i => i.photos.map(p => p.sha256)); })()"
        )
        (sha,) = queued[0]

        await page.offline(False)
        await queue_sent(page)
        await page.js("location.hash = '#work'")
        case_id = await page.until(
            f"(window.onegridWorker.state.work.find(c => c.source_id === '{report_id}') || {{}}).case_id",
            "the patrol report's case in My work",
        )
        await page.until(f"!!document.querySelector('#work [data-case=\"{case_id}\"]')", "the case card")
        await page.screenshot(SHOTS / "05-我的任务-case-appeared.png")
        stored = await http.get(
            f"{console}/worker/api/photos/{sha}", headers={"Authorization": f"Bearer {WORKER_A}"}
        )
        assert stored.status_code == 200 and hashlib.sha256(stored.content).hexdigest() == sha
        # the console's case page shows the photo by its hash; the audit trail's records hold it
        audit = system["urls"]["audit"]
        for _ in range(120):
            shown = (await http.get(f"{console}/api/cases/{case_id}", headers=ADMIN)).json()
            story = await http.get(
                f"{audit}/v1/cases/{case_id}/story", params={"payload": "true", "limit": 50}, headers=ADMIN
            )
            if (shown.get("case") or {}).get("photos") and sha in payloads(story):
                break
            await asyncio.sleep(0.5)
        assert [(p["sha256"], p["by"]) for p in shown["case"]["photos"]] == [(sha, "report")]
        # in the patrol record and in the case event, as recorded (payloads are base64 in the story)
        assert payloads(story).count(sha) >= 2, story.text[:2000]

        # -- 2. handled on the spot ---------------------------------------------------------------
        await dispatch_case(http, dispatch, case_id, "registered")
        await page.js(f"location.hash = '#case/{case_id}'")
        await page.until("!!document.querySelector('#self-handle')", "the self-handle form")
        await page.pick_files("#before-photos", before)
        await page.until("document.querySelectorAll('#self-handle .thumbs img').length === 1", "before photo")
        await page.pick_files("#after-photos", after)
        await page.until("document.querySelectorAll('#self-handle .thumbs img').length === 2", "after photo")
        await page.type("#action-note", "已清运，路口恢复通行。")
        await page.screenshot(SHOTS / "06-自行处置-self-handle.png")
        await page.click("#confirm-self-handle")
        await queue_sent(page)
        resolved = await dispatch_case(http, dispatch, case_id, "resolved")
        assert resolved["transitions"][-1]["action"] == "self_handle"
        for _ in range(120):
            photos = (
                (await http.get(f"{console}/api/cases/{case_id}", headers=ADMIN)).json().get("case") or {}
            ).get("photos", [])
            if len(photos) == 3:
                break
            await asyncio.sleep(0.5)
        assert [p["by"] for p in photos] == ["report", "self_handle", "self_handle"], photos
        # the one who handled it cannot verify it too
        same = await http.post(
            f"{console}/worker/api/cases/{case_id}/verify",
            json={"reason": "verify.passed"},
            headers={"Authorization": f"Bearer {WORKER_A}"},
        )
        assert same.status_code == 409 and "verify.same_actor" in same.text

        # -- 3. a department's resolved case, verified by the worker -------------------------------
        other = await report_by_api(
            http, console, photo, severity="III", text="排水口堵塞积水\n雨后积水未退。"
        )
        other_case = await page.until(
            f"(window.onegridWorker.state.work.find(c => c.source_id === '{other}') || {{}}).case_id",
            "the second case in My work",
        )
        dispatched = await dispatch_case(http, dispatch, other_case, "dispatched")
        order = dispatched["case"]["orders"][-1]
        dept = order["department"]
        feedback = {
            "feedback_id": str(uuid.uuid4()),
            "order_id": order["order_id"],
            "case_id": other_case,
            "department": dept,
            "kind": "resolve",
            "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "actor": {"kind": "department", "id": dept, "display": ""},
            "note": "已疏通。",
            "evidence": [
                {"ref": f"evidence/{sha}.jpg", "media_type": "image/jpeg", "sha256": sha, "taken_at": None}
            ],
            "return_reason": None,
        }
        dept_token = token("department_operator", departments=[dept], subject=dept)
        r = await http.post(
            f"{dispatch}/v1/feedback", json=feedback, headers={"Authorization": f"Bearer {dept_token}"}
        )
        assert r.status_code == 200, r.text
        await dispatch_case(http, dispatch, other_case, "resolved")
        await page.until(
            f"(window.onegridWorker.state.work.find(c => c.case_id === '{other_case}') || {{}}).expected === 'verify'",
            "the resolved case to verify in My work",
        )
        await page.js(f"location.hash = '#case/{other_case}'")
        await page.until("!!document.querySelector('#verify')", "the verify form")
        await page.pick_files("#verify-photos", after)
        await page.until("document.querySelectorAll('#verify .thumbs img').length === 1", "verify photo")
        await page.type("#action-note", "现场核查：已疏通，无积水。")
        await page.screenshot(SHOTS / "07-核查-verify.png")
        await page.click("#verify-pass")
        await queue_sent(page)
        closed = await dispatch_case(http, dispatch, other_case, "closed")
        assert [t["action"] for t in closed["transitions"]][-2:] == ["verify", "close"]
        await page.js("location.hash = '#work'")
        await page.screenshot(SHOTS / "08-我的任务-after.png")

        # -- 4. the worker's 考核 figures: reports, on-the-spot handling, checks and their times ----
        evaluation = system["urls"]["evaluation"]
        row: dict[str, Any] | None = None
        for _ in range(240):
            figures = (await http.get(f"{evaluation}/v1/workers", headers=ADMIN)).json()
            row = next((w for w in figures["workers"] if w["worker"] == "grid_worker:gw-a"), None)
            if row and row["patrol_reports"] >= 2 and row["self_handled"] >= 1 and row["verifications"] >= 1:
                break
            await asyncio.sleep(0.5)
        assert row and row["patrol_reports"] >= 2 and row["self_handled"] >= 1, figures
        assert row["verifications"] >= 1 and row["verify_max_s"] is not None, figures
        assert not [c for c in page.console if c.startswith("exception")], page.console

        # -- 5. the console's case page shows the photos themselves: thumbnails the console made ----
        operator = ADMIN["Authorization"].removeprefix("Bearer ")
        await page.goto(f"{console}/cases/{case_id}#token={operator}")
        await page.until(
            "[...document.querySelectorAll('#photos figure.photo img.thumb')]"
            ".filter(i => i.complete && i.naturalWidth > 0).length === 3",
            "three thumbnails on the case page",
        )
        shown = await page.js(
            "[...document.querySelectorAll('#photos figure.photo')].map(f => [f.dataset.sha256, f.dataset.by,"
            " f.querySelector('img').naturalWidth])"
        )
        assert [(s, b) for s, b, _ in shown] == [(p["sha256"], p["by"]) for p in photos], shown
        assert all(0 < w <= 320 for _, _, w in shown), shown  # thumbnails, not the photos
        await page.js("document.getElementById('photos').scrollIntoView()")
        await page.screenshot(SHOTS / "10-案件页照片-console-case-photos.png")


async def report_by_api(
    http: httpx.AsyncClient,
    console: str,
    photo: Path,
    *,
    severity: str,
    text: str,
    category: str = "city.drainage",
) -> str:
    """A report as the app sends it, straight to the API (the second case of the scenario)."""
    auth = {"Authorization": f"Bearer {WORKER_A}"}
    data = await asyncio.to_thread(photo.read_bytes)
    sha = hashlib.sha256(data).hexdigest()
    r = await http.put(
        f"{console}/worker/api/photos/{sha}", content=data, headers=auth | {"Content-Type": "image/png"}
    )
    assert r.status_code == 200, r.text
    report_id = str(uuid.uuid4())
    body = {
        "report_id": report_id,
        "grid_code": GRID_A,
        "category": category,
        "description": text,
        "severity": severity,
        "location": {"lat": HERE[0] + 0.0005, "lon": HERE[1] + 0.0005, "source": "map"},
        "photos": [{"sha256": sha, "media_type": "image/png"}],
        "reported_at": datetime.now(UTC).isoformat(),
    }
    for _ in range(2):  # sent twice (a lost answer): taken once
        r = await http.post(f"{console}/worker/api/patrol", json=body, headers=auth)
        assert r.status_code == 202, r.text
    return report_id


async def test_another_workers_grid_is_not_visible(system: dict[str, Any], tmp_path: Path) -> None:
    chromium = chromium_with_chinese()
    console = system["urls"]["console"]
    auth_b = {"Authorization": f"Bearer {WORKER_B}"}
    async with httpx.AsyncClient(timeout=10) as http:
        # A's grid has cases (the first test's, or this one's own report)
        photo = png(tmp_path / "p.png")
        # A missing manhole cover (infrastructure): not the first test's standing water a few metres
        # away, which a second drainage report would join as the same incident (no case of its own).
        a_report = await report_by_api(
            http,
            console,
            photo,
            severity="IV",
            text="井盖缺失\n人行道井盖缺失。",
            category="city.facility_damage",
        )
        for _ in range(600):
            work_a = (
                await http.get(f"{console}/worker/api/work", headers={"Authorization": f"Bearer {WORKER_A}"})
            ).json()
            if any(c["source_id"] == a_report for c in work_a["cases"]):
                break
            await asyncio.sleep(0.5)
        a_cases = {c["case_id"] for c in work_a["cases"]}
        mine = next((c["case_id"] for c in work_a["cases"] if c["source_id"] == a_report), None)
        assert mine is not None, f"the case of report {a_report} never reached A's work"
        assert a_cases
        work_b = (await http.get(f"{console}/worker/api/work", headers=auth_b)).json()
        assert not a_cases & {c["case_id"] for c in work_b["cases"]}
        assert all(c["grid"] is None or c["grid"].startswith(GRID_B) for c in work_b["cases"])
        # nor can B report for A's grid, nor read a case of it from dispatch
        refused = await http.post(
            f"{console}/worker/api/patrol",
            json={
                "report_id": str(uuid.uuid4()),
                "grid_code": GRID_A,
                "category": "city.garbage",
                "description": "x",
                "severity": "IV",
                "location": {"lat": HERE[0], "lon": HERE[1], "source": "gps"},
                "photos": [
                    {
                        "sha256": hashlib.sha256(await asyncio.to_thread(photo.read_bytes)).hexdigest(),
                        "media_type": "image/png",
                    }
                ],
                "reported_at": datetime.now(UTC).isoformat(),
            },
            headers=auth_b,
        )
        assert refused.status_code == 403
        case_a = next(iter(a_cases))
        act = await http.post(
            f"{console}/worker/api/cases/{case_a}/escalate", json={"reason": "whistle.x"}, headers=auth_b
        )
        assert act.status_code == 404
        # A blows the whistle on its own new case (网格吹哨): up the ladder, with the reason
        up = await http.post(
            f"{console}/worker/api/cases/{mine}/escalate",
            json={"reason": "whistle.beyond_grid", "note": "井盖需市政更换。"},
            headers={"Authorization": f"Bearer {WORKER_A}", "Idempotency-Key": f"whistle-{a_report}"},
        )
        assert up.status_code == 200 and up.json()["state"] == "escalated", up.text
    async with app_for(chromium, console, tmp_path / "profile-b") as page:
        await signed_in(page, console, WORKER_B)
        await page.until(
            f"window.onegridWorker.state.me && window.onegridWorker.state.me.grids[0].code === '{GRID_B}'",
            "B's grid",
        )
        shown = await page.js("[...document.querySelectorAll('#work [data-case]')].map(e => e.dataset.case)")
        assert not set(shown) & a_cases
        grids = await page.js("window.onegridWorker.state.grids.features.map(f => f.properties.code)")
        assert grids and all(g.startswith(GRID_B) for g in grids)
        await page.screenshot(SHOTS / "09-另一网格-other-worker.png")
