"""Intake on the real broker: a mixed stream of thousands of records from all the feeds, with
duplicates, malformed records, unmapped codes, unknown stations, places outside the city and one
cross-network incident, gives exactly the expected cases, DLQ and quarantine, although the intake
process is SIGKILLed halfway and restarted."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from intake.domain.identity import case_id_for
from onegrid.kafka.admin import consumer_lag, ensure_topics
from onegrid.topics import TopicSpec

from .conftest import read_all

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.records import BEIJING, HOME, cap_alert, hj212_packet, party_diary, safety_event

WORKER = Path(__file__).parent / "workers" / "intake_worker.py"
sys.path.insert(0, str(WORKER.parent))
from intake_worker import FEEDS, names  # noqa: E402
from support.shared import CONFORMANCE  # noqa: E402

BASE = datetime(2025, 1, 1, 8, 0, tzinfo=BEIJING)
SENDER = "yjj@yangzhou.gov.cn"


class Stream:
    """The records to send, and what intake must make of them."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.records: list[tuple[str, bytes, bytes]] = []  # (feed topic base, key, value)
        self.reported: set[str] = set()  # expected case ids of case.reported (non-env)
        self.amended: set[str] = set()
        self.cancelled: set[str] = set()
        self.dlq: list[bytes] = []
        self.quarantine: list[bytes] = []
        self.env_episodes = 0
        self.slot = 0

    def when(self) -> datetime:
        # 25 hours apart: beyond every correlation window, so only the planned incident merges.
        self.slot += 1
        return BASE + timedelta(hours=25 * self.slot)

    def near_home(self) -> tuple[float, float]:
        return (HOME[0] + self.rng.uniform(-0.02, 0.02), HOME[1] + self.rng.uniform(-0.02, 0.02))

    def add(self, topic: str, key: str, value: bytes) -> None:
        self.records.append((topic, key.encode(), value))


def build_stream(stations: list[str]) -> Stream:
    s = Stream()
    cap_t, env_t, safety_t, party_t = (
        FEEDS_BY_NAME["cap"],
        FEEDS_BY_NAME["hj212"],
        FEEDS_BY_NAME["safety"],
        FEEDS_BY_NAME["party"],
    )
    # HJ 212: each station sends 60 minute packets; packets 20-29 exceed PM2.5 -> one episode, closed later.
    t0 = datetime(2026, 11, 30, 6, 0, tzinfo=BEIJING)
    for mn in stations:
        for i in range(60):
            value = 150.0 if 20 <= i < 30 else 30.0
            s.add(env_t, mn, hj212_packet(mn, t0 + timedelta(minutes=i), {"a34004": value}))
        s.env_episodes += 1
    # Party diaries and public-safety events at distinct places and times.
    for i in range(400):
        sid = f"MQRJ{2025000000000 + i:013d}"
        s.add(
            party_t,
            sid,
            party_diary(sid, code=s.rng.choice(["MQ01", "MQ04", "MQ02"]), wgs=s.near_home(), when=s.when()),
        )
        s.reported.add(str(case_id_for("party", sid)))
    for i in range(300):
        sid = f"PA3210032025{i:010d}"
        s.add(
            safety_t,
            sid,
            safety_event(sid, code=s.rng.choice(["0101", "0201", "0301"]), wgs=s.near_home(), when=s.when()),
        )
        s.reported.add(str(case_id_for("safety", sid)))
    # CAP: alerts, then updates and cancels of some of them.
    alerts = []
    for i in range(50):
        ident = f"YZ-2025-{i:04d}"
        s.add(
            cap_t, SENDER, cap_alert(ident, centre=s.near_home(), sent=s.when(), category="Met", event="暴雨")
        )
        alerts.append(ident)
        s.reported.add(str(case_id_for("emergency", f"{SENDER},{ident}")))
    for ident in alerts[:20]:
        s.add(
            cap_t,
            SENDER,
            cap_alert(
                f"{ident}-U", msg_type="Update", refs=(ident,), sent=s.when(), category="Met", event="暴雨"
            ),
        )
        s.amended.add(str(case_id_for("emergency", f"{SENDER},{ident}")))
    for ident in alerts[20:30]:
        s.add(
            cap_t,
            SENDER,
            cap_alert(
                f"{ident}-C", msg_type="Cancel", refs=(ident,), sent=s.when(), category="Met", event="暴雨"
            ),
        )
        s.cancelled.add(str(case_id_for("emergency", f"{SENDER},{ident}")))
    # Duplicates: 100 records sent again, byte for byte.
    for topic, key, value in s.rng.sample([r for r in s.records if r[0] != env_t], 100):
        s.records.append((topic, key, value))
    # Malformed: bad CRC, hostile or invalid XML, wrong encoding, broken JSON -> DLQ.
    for i in range(30):
        good = hj212_packet(stations[0], t0 + timedelta(hours=5, minutes=i), {"a34004": 10.0})
        bad = good[:-6] + (b"0000" if not good[:-6].endswith(b"0000") else b"FFFF") + b"\r\n"
        s.add(env_t, stations[0], bad)
        s.dlq.append(bad)
    for i in range(20):
        bad = (CONFORMANCE / "cap/xee.cap").read_bytes() if i % 2 else b"<alert>not closed" + bytes([65 + i])
        s.add(cap_t, SENDER, bad)
        s.dlq.append(bad)
    for i in range(20):
        bad = safety_event(f"PA3210032026{i:010d}").decode("gbk").encode("utf-8")  # declared GBK, sent UTF-8
        s.add(safety_t, f"bad{i}", bad)
        s.dlq.append(bad)
    for i in range(20):
        bad = b'{"rjbh": "X%d", "sjbt": ' % i
        s.add(party_t, f"bad{i}", bad)
        s.dlq.append(bad)
    # Outside the city: valid alerts over Beijing -> DLQ with place.outside_city.
    for i in range(10):
        v = cap_alert(f"BJ-{i}", centre=(39.9 + i / 100, 116.4), sent=s.when())
        s.add(cap_t, SENDER, v)
        s.dlq.append(v)
    # Unmapped codes and unknown stations -> quarantine.
    for i in range(15):
        v = party_diary(f"MQRJ9{i:012d}", code="MQ77", wgs=s.near_home(), when=s.when())
        s.add(party_t, f"q{i}", v)
        s.quarantine.append(v)
    for i in range(10):
        v = hj212_packet(f"UNREGISTERED{i:04d}", t0, {"a34004": 10.0})
        s.add(env_t, f"UNREGISTERED{i:04d}", v)
        s.quarantine.append(v)
    # One fire, three networks, same place and time: one case.
    fire_at = s.when()
    s.add(safety_t, "fire", safety_event("PA32100320259999999999", code="0302", wgs=HOME, when=fire_at))
    s.add(
        party_t,
        "fire",
        party_diary(
            "MQRJ9999999999999",
            code="MQ05",
            wgs=(HOME[0] + 0.001, HOME[1]),
            when=fire_at + timedelta(minutes=3),
        ),
    )
    s.add(cap_t, SENDER, cap_alert("YZ-FIRE-1", centre=HOME, sent=fire_at + timedelta(minutes=5)))
    # Order is kept per topic and key (a station's packets, an alert before its update): feeds are
    # separate topics, so they interleave anyway as intake reads them.
    return s


FEEDS_BY_NAME = {feed: topic for topic, feed in FEEDS.items()}


async def test_mixed_stream_exactly_once_across_sigkill(kafka_settings, tmp_path) -> None:
    import uuid as _uuid

    from grid_registry.domain.seed import seed_records

    ns = _uuid.uuid4().hex[:8]
    n = names(ns)
    specs = [TopicSpec(t, partitions=3) for base, t in n.items() if base in FEEDS]
    specs += [
        TopicSpec(n["cases.v1"], partitions=3),
        TopicSpec(n["intake.dlq.v1"], partitions=1),
        TopicSpec(n["intake.quarantine.v1"], partitions=1),
        TopicSpec(n["intake.state.v1"], partitions=3, compacted=True),
        TopicSpec(n["grid.registry.v1"], partitions=1, compacted=True),
    ]
    await ensure_topics(kafka_settings, specs)

    producer = AIOKafkaProducer(linger_ms=20, max_batch_size=512 * 1024, **kafka_settings.client_kwargs())
    await producer.start()
    records = seed_records()
    for rec in records:
        await producer.send(
            n["grid.registry.v1"], json.dumps(rec).encode(), key=f"{rec['kind']}:{rec['code']}".encode()
        )
    await producer.flush()
    stations = sorted(r["code"] for r in records if r["kind"] == "station" and r.get("system_code") == "22")[
        :20
    ]
    stream = build_stream(stations)
    for topic, key, value in stream.records:
        await producer.send(n[topic], value, key=key)
    await producer.flush()
    await producer.stop()

    def start(delay: float = 0.0) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, str(WORKER), kafka_settings.bootstrap_servers, ns, str(delay)],
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "worker.log", "ab"),
        )

    expected_events = (
        len(stream.reported) + len(stream.amended) + len(stream.cancelled) + 2 * stream.env_episodes + 3
    )
    # Each partition is its own batch (and transaction): a short delay per batch slows the run enough.
    worker = start(delay=0.03)
    progress = AIOKafkaConsumer(
        n["cases.v1"],
        auto_offset_reset="earliest",
        isolation_level="read_uncommitted",
        **kafka_settings.client_kwargs(),
    )
    await progress.start()
    got = 0
    try:
        deadline = asyncio.get_running_loop().time() + 90
        while got < expected_events // 3:
            batch = await progress.getmany(timeout_ms=100)
            got += sum(len(v) for v in batch.values())
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            assert asyncio.get_running_loop().time() < deadline, f"only {got} events after 90 s"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        await progress.stop()
    assert got < expected_events, "the kill must land mid-stream"

    worker = start()
    try:
        group = f"intake.{ns}"
        deadline = asyncio.get_running_loop().time() + 120
        while True:
            lags = [r for r in await consumer_lag(kafka_settings, [group])]
            inputs = {n[t] for t in FEEDS}
            done = {r.topic for r in lags if r.topic in inputs and r.lag <= 1} == inputs and all(
                r.lag <= 1 for r in lags if r.topic in inputs
            )
            if done and len(lags) >= len(inputs):
                break
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            assert asyncio.get_running_loop().time() < deadline, lags
            await asyncio.sleep(0.5)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)

    cases = [json.loads(r.value) for r in await read_all(kafka_settings, n["cases.v1"], timeout_s=3)]
    dlq = await read_all(kafka_settings, n["intake.dlq.v1"], timeout_s=3)
    ids = Counter(c["event_id"] for c in cases)
    assert max(ids.values()) == 1, "an event was published twice"
    by_type: dict[str, list[dict]] = {}
    for c in cases:
        by_type.setdefault(c["event_type"], []).append(c)

    reported = by_type["case.reported"]
    env_reported = [c for c in reported if c["source"]["network"] == "env"]
    assert len(env_reported) == stream.env_episodes
    assert len({c["attributes"]["mn"] for c in env_reported}) == stream.env_episodes
    fire = [
        c
        for c in cases
        if c["source"]["source_id"] in ("PA32100320259999999999", "MQRJ9999999999999", f"{SENDER},YZ-FIRE-1")
    ]
    assert sorted(c["event_type"] for c in fire) == ["case.linked", "case.linked", "case.reported"]
    assert len({c["case_id"] for c in fire}) == 1
    others = {c["case_id"] for c in reported if c["source"]["network"] != "env" and c not in fire}
    assert others == stream.reported
    assert {
        c["case_id"] for c in by_type["case.amended"] if c["source"]["network"] == "emergency"
    } == stream.amended
    assert {c["case_id"] for c in by_type["case.cancelled"]} == stream.cancelled
    env_closed = [c for c in by_type["case.amended"] if c["source"]["network"] == "env"]
    assert len(env_closed) == stream.env_episodes
    assert {c["case_id"] for c in env_closed} == {c["case_id"] for c in env_reported}

    dlq = await read_all(kafka_settings, n["intake.dlq.v1"], timeout_s=3)
    assert sorted(r.value for r in dlq) == sorted(stream.dlq)
    reasons = Counter(dict(r.headers)["dlq_reason"].decode() for r in dlq)
    assert reasons["place.outside_city"] == 10 and reasons["cap.forbidden_xml"] == 10
    assert reasons["safety.encoding"] == 20 and reasons["party.json_malformed"] == 20
    quarantine = await read_all(kafka_settings, n["intake.quarantine.v1"], timeout_s=3)
    assert sorted(r.value for r in quarantine) == sorted(stream.quarantine)
    q_reasons = Counter(dict(r.headers)["quarantine_reason"].decode() for r in quarantine)
    assert q_reasons == {"crosswalk.unmapped_code": 15, "registry.unknown_station": 10}
