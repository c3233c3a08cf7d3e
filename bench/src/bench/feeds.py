"""The legacy records the benchmarks send: every feed in its real format, placed inside Hanjiang.

The builders are the tests' own (`tests/support/records.py`, loaded by path so that nothing is written
twice); Open311 form bodies, which only the API builds in production, are built here with the headers
the API adds. Records are deterministic for a seed; each has a distinct source id, so the intake makes
one case per incident (a few nearby incidents of one kind correlate, as they would in the city).
"""

from __future__ import annotations

import importlib.util
import random
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

from onegrid.paths import project_root
from onegrid.topics import legacy_feeds

FEEDS = ("hj212", "cap", "safety", "party", "open311")
# The topic of each feed (the catalogue's names, without a bench namespace).
FEED_TOPICS = {feed: topic for topic, feed in legacy_feeds().items()}
# Codes that map to a case in the crosswalk (intake/data/crosswalk.v1.json).
_SAFETY_CODES = ("0101", "0201", "0301", "0302", "0401")
_PARTY_CODES = ("MQ01", "MQ02", "MQ04", "MQ05")
_OPEN311_CODES = ("001", "002", "003", "004", "005")


@dataclass(frozen=True, slots=True)
class Legacy:
    """One record to produce on a feed's topic."""

    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@cache
def support_module(name: str) -> ModuleType:
    """`tests/support/<name>.py`, loaded by path: the tests' own builders, never shipped in a package."""
    path = project_root() / "tests" / "support" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_support_{name}", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def builders() -> ModuleType:
    """tests/support/records.py: the record builders in the feeds' real formats."""
    return support_module("records")


@cache
def air_stations() -> tuple[str, ...]:
    """The MNs of the seed's registered monitoring stations (HJ 212 packets from others are quarantined)."""
    return tuple(sorted(r["code"] for r in published_seed() if r["kind"] == "station"))


class FeedStream:
    """Records of one feed; `take(n)` continues where the previous call stopped (distinct ids)."""

    def __init__(
        self, feed: str, *, seed: int = 1, run: str | None = None, apart: timedelta = timedelta(minutes=7)
    ) -> None:
        """`run` (8 digits) keeps ids distinct between runs on one broker; random when not given.
        `apart`: the time between consecutive incidents (decides how many share a correlation window)."""
        if feed not in FEEDS:
            raise ValueError(f"unknown feed {feed!r}; one of {', '.join(FEEDS)}")
        self.feed = feed
        self.rng = random.Random(seed)
        # Digits only: the networks' source ids are numeric after their prefix (PA…, MQRJ…).
        self.run = run or f"{random.Random().randrange(10**8):08d}"
        self.i = 0
        self.b = builders()
        self.base = datetime(2026, 3, 1, 8, 0, tzinfo=self.b.BEIJING)
        self.apart = apart

    def take(self, n: int) -> list[Legacy]:
        out = [self._one() for _ in range(n)]
        return out

    def _place(self) -> tuple[float, float]:
        lat, lon = self.b.HOME
        return (lat + self.rng.uniform(-0.05, 0.05), lon + self.rng.uniform(-0.05, 0.05))

    def _when(self) -> datetime:
        # Incidents of one kind correlate only when close in place and time.
        return self.base + self.apart * self.i

    def _one(self) -> Legacy:
        self.i += 1
        i, b, run = self.i, self.b, self.run
        if self.feed == "hj212":
            stations = air_stations()
            mn = stations[i % len(stations)]
            minute = i // len(stations)
            # Mostly normal minutes; every station exceeds the PM2.5 limit for 10 of every 60 minutes.
            value = 150.0 if minute % 60 >= 50 else 30.0 + self.rng.random() * 10
            qn = datetime(2026, 3, 1, 0, 0, tzinfo=b.BEIJING) + timedelta(minutes=minute)
            return Legacy(mn.encode(), b.hj212_packet(mn, qn, {"a34004": value}))
        if self.feed == "cap":
            ident = f"BENCH-{run}-{i:08d}"
            value = b.cap_alert(ident, centre=self._place(), sent=self._when(), category="Met", event="暴雨")
            return Legacy(b"yjj@yangzhou.gov.cn", value)
        if self.feed == "safety":
            sid = f"PA{run}{i:012d}"
            code = self.rng.choice(_SAFETY_CODES)
            return Legacy(sid.encode(), b.safety_event(sid, code=code, wgs=self._place(), when=self._when()))
        if self.feed == "party":
            sid = f"MQRJ{run}{i:012d}"
            code = self.rng.choice(_PARTY_CODES)
            return Legacy(sid.encode(), b.party_diary(sid, code=code, wgs=self._place(), when=self._when()))
        return self._open311()

    def _open311(self) -> Legacy:
        request_id = str(uuid.UUID(int=self.rng.getrandbits(128)))
        lat, lon = self._place()
        body = urlencode(
            {
                "service_code": self.rng.choice(_OPEN311_CODES),
                "lat": f"{lat:.6f}",
                "long": f"{lon:.6f}",
                "address_string": "扬州市邗江区新盛街道文昌西路",
                "description": f"路面塌陷，约一米宽，请尽快处理 #{self.i}",
            }
        ).encode()
        received = self._when().astimezone(UTC).isoformat().replace("+00:00", "Z")
        headers = (
            ("ce_specversion", b"1.0"),
            ("ce_type", b"cn.onegrid.legacy.open311.v1"),
            ("ce_source", b"/onegrid/open311"),
            ("ce_id", request_id.encode()),
            ("open311_service_request_id", request_id.encode()),
            ("open311_received_at", received.encode()),
        )
        return Legacy(request_id.encode(), body, headers)


def describe(records: list[Legacy]) -> dict[str, Any]:
    sizes = [len(r.value) for r in records]
    return {"records": len(records), "mean_bytes": round(sum(sizes) / max(1, len(sizes)))}


@cache
def published_seed() -> tuple[dict[str, Any], ...]:
    """The registry's seed as grid-registry publishes it on a fresh database: every record at
    revision 1 (dispatch records the revisions its routing decisions used)."""
    from grid_registry.domain.seed import seed_records

    stamp = {"revision": 1, "updated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
    return tuple({**r, **stamp} for r in seed_records())


def seeded_view() -> Any:
    """A RegistryView holding `published_seed()`, built without Kafka."""
    import json

    from registry_client import RegistryView

    view = RegistryView()
    for r in published_seed():
        view.apply(f"{r['kind']}:{r['code']}", json.dumps(r).encode())
    return view
