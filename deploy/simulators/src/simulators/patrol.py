"""Simulated patrol reports (巡查上报): what the grid worker's phone app sends the console
(`PUT /worker/api/photos/<sha256>`, then `POST /worker/api/patrol`), from points inside the
reference city's grids: problems of severity IV, handled on the spot where the SLA leaves their
category to the grid (garbage, vending, parking, ...) and sent to a department otherwise, now and then
a bigger one (III) that goes to a department. Each photo is a small generated PNG, unique per report,
so its hash is too; each report has its own report id (resending it is harmless)."""

from __future__ import annotations

import asyncio
import hashlib
import struct
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np

from simulators.running import Tally

# (category, what the worker writes): everyday finds of a patrol.
FINDS = (
    ("city.garbage", "垃圾堆放\n路边堆放生活垃圾约三袋。"),
    ("city.road_damage", "道路破损\n人行道地砖松动破损约两平方米。"),
    ("city.streetlight", "路灯故障\n小区主路两盏路灯不亮。"),
    ("city.illegal_parking", "违章停车\n消防通道停放车辆。"),
    ("city.facility_damage", "井盖缺失\n人行道井盖缺失，已临时围挡。"),
    ("community.sanitation", "环境卫生\n楼道堆放杂物。"),
    ("city.street_vending", "占道经营\n路口流动摊贩占道。"),
)


@dataclass(frozen=True)
class Spot:
    grid: str
    lat: float
    lon: float


def spots(limit: int = 200, seed: int = 0) -> list[Spot]:
    """Points inside grids of the reference seed (the registry's own polygons)."""
    from shapely.geometry import shape

    from grid_registry.domain.seed import seed_records

    grids = [r for r in seed_records() if r["kind"] == "grid" and r.get("level") == "grid" and r.get("area")]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(grids), size=min(limit, len(grids)), replace=False)
    out = []
    for i in chosen:
        p = shape(grids[int(i)]["area"]).representative_point()
        out.append(Spot(grids[int(i)]["code"], round(p.y, 6), round(p.x, 6)))
    return out


def photo(seed: int, size: int = 64) -> bytes:
    """A small PNG whose pixels depend on `seed` (a stand-in for the phone's downscaled JPEG)."""
    r, g, b = seed % 251, (seed // 251) % 251, (seed // 63001) % 251
    rows = b"".join(b"\x00" + bytes((r, (g + y) % 256, b)) * size for y in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    head = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", head)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def upload(http: httpx.AsyncClient, console: str, data: bytes) -> dict[str, str]:
    sha = hashlib.sha256(data).hexdigest()
    resp = await http.put(
        f"{console}/worker/api/photos/{sha}", content=data, headers={"Content-Type": "image/png"}
    )
    resp.raise_for_status()
    return {"sha256": sha, "media_type": "image/png"}


async def file_report(
    http: httpx.AsyncClient,
    console: str,
    spot: Spot,
    *,
    category: str,
    text: str,
    severity: str = "IV",
    photo_seed: int,
) -> str:
    """One patrol report as the app files it; returns its report id."""
    shot = await upload(http, console, photo(photo_seed))
    report_id = str(uuid.uuid4())
    body: dict[str, Any] = {
        "report_id": report_id,
        "grid_code": spot.grid,
        "category": category,
        "description": text,
        "severity": severity,
        "location": {"lat": spot.lat, "lon": spot.lon, "source": "gps", "accuracy_m": 10.0},
        "photos": [shot],
        "reported_at": datetime.now(UTC).isoformat(),
        "worker_display": "网格员",
    }
    resp = await http.post(f"{console}/worker/api/patrol", json=body)
    resp.raise_for_status()
    return report_id


class Patrols:
    """Files a patrol report every `every_s` seconds on average until `stop`."""

    def __init__(
        self, console_url: str, tally: Tally, *, headers: dict[str, str], every_s: float = 30.0, seed: int = 0
    ) -> None:
        self._console = console_url.rstrip("/")
        self._tally = tally
        self._every = every_s
        self._rng = np.random.default_rng(seed)
        self._headers = headers
        self._seed = seed

    async def run(self, stop: asyncio.Event) -> None:
        places = await asyncio.to_thread(spots, 200, self._seed)
        async with httpx.AsyncClient(timeout=10.0, headers=self._headers) as http:
            n = 0
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), float(self._rng.exponential(self._every)))
                    return
                except TimeoutError:
                    pass
                n += 1
                category, text = FINDS[int(self._rng.integers(len(FINDS)))]
                spot = places[int(self._rng.integers(len(places)))]
                severity = "III" if self._rng.random() < 0.2 else "IV"
                try:
                    await file_report(http, self._console, spot, category=category, text=text,
                                      severity=severity, photo_seed=self._seed * 100_000 + n)  # fmt: skip
                    self._tally["patrol reports"] += 1
                except httpx.HTTPError as e:
                    self._tally[f"patrol report failed {type(e).__name__}"] += 1
