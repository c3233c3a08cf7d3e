"""Correlation independent of the number of intake instances (issue 13.8), on the real broker.

One seeded input, reports of the same incidents from three networks (public safety, party diaries,
CAP alerts) on different partitions, with follow-ups, updates and duplicates, is read by 1, 2 and 4
intake instances in turn (each run its own consumer groups and output topics, the same legacy
topics). Every run must give the identical cases: the same case ids, the same records linked to the
same cases, the same amendments; and every legacy record accounted exactly once."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from intake.bootstrap import IntakeParts, intake_parts
from intake.ledger import set_aside_account
from intake.pipeline import IntakeTopics
from onegrid.kafka.admin import ensure_topics
from onegrid.kafka.loop import ConsumerLoop
from onegrid.settings import KafkaSettings
from onegrid.topics import TopicSpec

from .conftest import read_all

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.records import BEIJING, HOME, cap_alert, party_diary, safety_event

pytestmark = pytest.mark.timeout(900)

BASE = datetime(2025, 3, 1, 8, 0, tzinfo=BEIJING)
SENDER = "yjj@yangzhou.gov.cn"
FEEDS = ("cap", "safety", "party")
T0_MS = 1_740_787_200_000  # the records' broker timestamps: part of the input, like their bytes


def seeded_input(seed: int = 13) -> list[tuple[str, bytes, bytes]]:
    """(feed, key, value) in the order they are produced."""
    rng = random.Random(seed)
    out: list[tuple[str, bytes, bytes]] = []

    def near() -> tuple[float, float]:
        return (HOME[0] + rng.uniform(-0.03, 0.03), HOME[1] + rng.uniform(-0.03, 0.03))

    for i in range(40):
        at = BASE + timedelta(hours=25 * i)  # apart beyond every correlation window
        place = near()
        close = (place[0] + 0.001, place[1])
        sid, pid, ident = f"PA3210032025{i:010d}", f"MQRJ{2025100000000 + i:013d}", f"YZ-2025-F{i:04d}"
        reports = [
            ("safety", sid.encode(), safety_event(sid, code="0302", wgs=place, when=at)),
            ("party", pid.encode(), party_diary(pid, code="MQ05", wgs=close, when=at + timedelta(minutes=3))),
            ("cap", SENDER.encode(), cap_alert(ident, centre=place, sent=at + timedelta(minutes=5))),
        ]
        rng.shuffle(reports)  # who reports first varies per incident
        out += reports[: 2 + i % 2]
        if i % 5 == 0:  # a follow-up of the public-safety event
            fid = f"PA3210032026{i:010d}"
            out.append(
                (
                    "safety",
                    fid.encode(),
                    safety_event(fid, wgs=place, related=sid, when=at + timedelta(hours=1)),
                )
            )
        if i % 7 == 0:  # the same diary again, byte for byte
            out.append(out[-1])
    # Lone reports: their own cases.
    for i in range(30):
        sid = f"PA3210032027{i:010d}"
        lone = safety_event(sid, code="0101", wgs=near(), when=BASE - timedelta(days=i + 1))
        out.append(("safety", sid.encode(), lone))
    return out


async def produce(kafka: KafkaSettings, legacy: dict[str, str]) -> int:
    producer = AIOKafkaProducer(linger_ms=20, **kafka.client_kwargs())
    await producer.start()
    try:
        records = seeded_input()
        for i, (feed, key, value) in enumerate(records):
            await producer.send(legacy[feed], value, key=key, timestamp_ms=T0_MS + 10 * i)
        await producer.flush()
        return len(records)
    finally:
        await producer.stop()


async def seed_registry(kafka: KafkaSettings, topic: str) -> None:
    from grid_registry.domain.seed import seed_records

    producer = AIOKafkaProducer(linger_ms=20, max_batch_size=512 * 1024, **kafka.client_kwargs())
    await producer.start()
    for rec in seed_records():
        await producer.send(topic, json.dumps(rec).encode(), key=f"{rec['kind']}:{rec['code']}".encode())
    await producer.stop()


class Run:
    """One run: `instances` intake instances in one consumer group on this run's output topics."""

    def __init__(self, kafka: KafkaSettings, legacy: dict[str, str], registry: str, instances: int) -> None:
        self.kafka = kafka
        self.instances = instances
        ns = uuid.uuid4().hex[:8]
        self.ns = ns
        self.n = {
            k: f"t.instances.{k}.{ns}"
            for k in ("cases", "state", "dlq", "quarantine", "ledger", "correlate", "cstate")
        }
        self.topics = IntakeTopics(
            feeds={legacy[f]: f for f in FEEDS},
            cases=self.n["cases"],
            state=self.n["state"],
            ledger=self.n["ledger"],
            correlate=self.n["correlate"],
            correlate_state=self.n["cstate"],
        )
        self.registry = registry
        self.group = f"intake.{ns}"

    async def create_topics(self) -> None:
        await ensure_topics(
            self.kafka,
            [
                TopicSpec(self.n["cases"], partitions=3),
                TopicSpec(self.n["state"], partitions=3, compacted=True),
                TopicSpec(self.n["dlq"], partitions=1, keyed=False),
                TopicSpec(self.n["quarantine"], partitions=1, keyed=False),
                TopicSpec(self.n["ledger"], partitions=3),
                TopicSpec(self.n["correlate"], partitions=3),
                TopicSpec(self.n["cstate"], partitions=3, compacted=True),
            ],
        )

    def loops(self, parts: IntakeParts, i: int) -> list[ConsumerLoop]:
        return parts.loops(
            self.kafka,
            group_prefix=self.group,
            client_id=f"{self.group}-{i}",
            dlq_topic=self.n["dlq"],
            quarantine_topic=self.n["quarantine"],
            batch_max_records=20,
            tick_interval_s=0.5,
        )

    async def accounted(self, reader: AIOKafkaConsumer, seen: Counter[tuple[str, int, int]]) -> None:
        """Every legacy record's accounts so far: ledger entries and set-aside copies."""
        fetched = await reader.getmany(timeout_ms=1000)
        for r in (r for rs in fetched.values() for r in rs):
            if r.topic == self.n["ledger"]:
                e = json.loads(r.value)
                for rec in e["records"]:
                    seen[(e["topic"], e["partition"], rec["offset"])] += 1
            else:
                acc = set_aside_account(r.headers, self.topics.feeds)
                if acc is not None:
                    seen[(acc.topic, acc.partition, acc.offset)] += 1

    async def run(self, total: int) -> list[dict[str, Any]]:
        await self.create_topics()
        instances = []
        for i in range(self.instances):
            parts = intake_parts(
                self.kafka, client_id=f"{self.ns}-{i}", topics=self.topics, registry_topic=self.registry
            )
            await parts.catch_up()
            instances.append((parts, self.loops(parts, i)))
        tasks = [asyncio.create_task(p.follow()) for p, _ in instances]
        tasks += [asyncio.create_task(loop.run()) for _, loops in instances for loop in loops]
        reader = AIOKafkaConsumer(
            self.n["ledger"],
            self.n["dlq"],
            self.n["quarantine"],
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
            **self.kafka.client_kwargs(),
        )
        await reader.start()
        seen: Counter[tuple[str, int, int]] = Counter()
        try:
            deadline = asyncio.get_running_loop().time() + 400
            while len(seen) < total:
                for t in tasks:
                    if t.done() and t.exception() is not None:
                        raise t.exception()  # type: ignore[misc]
                await self.accounted(reader, seen)
                assert asyncio.get_running_loop().time() < deadline, f"{len(seen)} of {total} accounted"
            await self.accounted(reader, seen)  # a second account of any record shows up too
        finally:
            await reader.stop()
            for _, loops in instances:
                for loop in loops:
                    loop.stop()
            for parts, _ in instances:
                await parts.stop()
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
        assert max(seen.values()) == 1, [k for k, v in seen.items() if v > 1]
        return [json.loads(r.value) for r in await read_all(self.kafka, self.n["cases"], timeout_s=3)]


def cases_of(events: list[dict[str, Any]]) -> set[tuple[str, str, str, str | None]]:
    """(case id, event type, source record, case merged into): the cases, independent of timing."""
    return {
        (
            e["case_id"],
            e["event_type"],
            f"{e['source']['network']}:{e['source']['source_id']}",
            (e.get("merge") or {}).get("matched_case_id"),
        )
        for e in events
    }


async def test_the_same_input_gives_the_same_cases_with_1_2_and_4_instances(
    kafka_settings: KafkaSettings,
) -> None:
    ns = uuid.uuid4().hex[:8]
    legacy = {f: f"t.instances.legacy.{f}.{ns}" for f in FEEDS}
    registry = f"t.instances.registry.{ns}"
    await ensure_topics(
        kafka_settings,
        # Kept forever: the input's timestamps are fixed (2025), beyond any time retention.
        [TopicSpec(t, partitions=3, retention_ms=None) for t in legacy.values()]
        + [TopicSpec(registry, partitions=1, compacted=True)],
    )
    await seed_registry(kafka_settings, registry)
    total = await produce(kafka_settings, legacy)

    results = {}
    for n in (1, 2, 4):
        results[n] = cases_of(await Run(kafka_settings, legacy, registry, n).run(total))
    one = results[1]
    linked = [c for c in one if c[1] == "case.linked"]
    assert len(linked) >= 40, "the input must correlate across networks"
    assert any(c[1] == "case.amended" for c in one)
    for n in (2, 4):
        assert results[n] == one, (
            f"{n} instances: {len(results[n] - one)} events only there, {len(one - results[n])} only with one: "
            f"{sorted(results[n] ^ one)[:6]}"
        )
