"""The ledger on Kafka: reads both sides (legacy topics; ledger entries and dead-letter copies) from the
start, matches them (intake.domain.ledger), and serves the balance at `GET /v1/ledger`.

Every intake instance keeps the whole ledger, like a global table, so any instance answers for all.
A judgement first reads the intake group's committed offsets, THEN catches up with the accounts up to
the end of everything written (onegrid.kafka.admin.WrittenEnds): the accounts of every committed
record are in by then (same transaction), so a record below the committed offset with no account is
truly unaccounted, never merely not read yet. Until a transaction left open on those topics ends (an
instance killed mid-batch, until its partition's next owner fences it), that end is out of reach and
the judgement is inconclusive: it calls nothing unaccounted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import APIRouter, Depends, HTTPException
from opentelemetry.metrics import CallbackOptions, Observation

from intake.domain.ledger import Account, LedgerBook, accounts_of_entry
from onegrid import telemetry
from onegrid.auth import Principal, require
from onegrid.envelope import header_dict
from onegrid.kafka.admin import WrittenEnds
from onegrid.kafka.records import Record
from onegrid.provided import Provided
from onegrid.settings import KafkaSettings

log = logging.getLogger(__name__)

# The dead-letter copies name their original in these headers (onegrid.kafka.records.dead_letter_record).
_SET_ASIDE = {"dlq": "dead_letter", "quarantine": "quarantine"}


class LedgerReader:
    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        feeds: Mapping[str, str],
        ledger_topic: str,
        set_aside_topics: Sequence[str],
        group_id: str,
        client_id: str,
        judge_interval_s: float = 5.0,
        correlate_topic: str | None = None,
        correlate_group: str | None = None,
    ) -> None:
        """`correlate_topic`/`correlate_group`: the correlation stage's topic and group, when
        records are forwarded to it (their accounts come from there)."""
        self._kafka = kafka
        self.feeds = dict(feeds)
        self.ledger_topic = ledger_topic
        self.set_aside_topics = tuple(set_aside_topics)
        self.group_id = group_id
        self.correlate_topic = correlate_topic
        self.correlate_group = correlate_group
        self._client_id = client_id
        self.judge_interval_s = judge_interval_s
        self.book = LedgerBook(self.feeds)
        self.snapshot: dict[str, Any] | None = None
        self._stopping = False
        meter = telemetry.meter("intake")
        meter.create_observable_gauge(
            "intake_ledger_unaccounted",
            callbacks=[self._observe("unaccounted")],
            description="legacy records below the committed offset with no outcome (lost): an alarm",
        )
        meter.create_observable_gauge(
            "intake_ledger_duplicated",
            callbacks=[self._observe("duplicated")],
            description="legacy records accounted more than once (processed twice): an alarm",
        )

    def _observe(self, field: str) -> Any:
        def callback(_options: CallbackOptions) -> list[Observation]:
            return [] if self.snapshot is None else [Observation(int(self.snapshot[field]))]

        return callback

    # -- reading ----------------------------------------------------------------------------------

    def apply(self, records: Sequence[Record]) -> None:
        for r in records:
            if r.topic in self.feeds:
                self.book.received(r.topic, r.partition, r.offset, r.timestamp)
            elif r.topic == self.ledger_topic:
                if r.value:
                    value = json.loads(r.value)
                    if value.get("horizon") is not None:
                        self.book.progress((value["topic"], int(value["partition"])), value["horizon"])
                    for acc in accounts_of_entry(value):
                        self.book.accounted(acc)
            elif r.topic == self.correlate_topic:
                h = header_dict(r.headers)
                if h.get("kind") == "forwarded":
                    origin = json.loads(h["origin"])
                    self.book.forwarded(
                        (str(origin[0]), int(origin[1]), int(origin[2])),
                        (r.topic, r.partition),
                        r.offset,
                        json.loads(h["order"]),
                    )
            elif r.topic in self.set_aside_topics:
                aside = set_aside_account(r.headers, self.feeds)
                if aside is not None:
                    self.book.accounted(aside)

    async def run(self) -> None:
        topics = [*self.feeds, self.ledger_topic, *self.set_aside_topics]
        if self.correlate_topic is not None:
            topics.append(self.correlate_topic)
        consumer = AIOKafkaConsumer(
            client_id=self._client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            **self._kafka.client_kwargs(),
        )
        admin = AIOKafkaAdminClient(**self._kafka.client_kwargs())
        ends = WrittenEnds(self._kafka, client_id=f"{self._client_id}-ends")
        await consumer.start()
        await admin.start()
        try:
            # Without a group, a subscription is assigned every partition, each read from its beginning.
            consumer.subscribe(topics)
            await wait_assigned(consumer)
            next_judge = 0.0
            while not self._stopping:
                await self._poll(consumer, 500)
                if time.monotonic() >= next_judge:
                    try:
                        await self.judge(consumer, admin, ends)
                    except Exception as exc:  # a broker away: judged again at the next interval
                        log.warning("ledger judgement failed: %r", exc)
                    next_judge = time.monotonic() + self.judge_interval_s
        finally:
            await consumer.stop()
            await admin.close()
            await ends.close()

    async def _poll(self, consumer: AIOKafkaConsumer, timeout_ms: int) -> None:
        fetched = await consumer.getmany(timeout_ms=timeout_ms, max_records=5000)
        self.apply([r for rs in fetched.values() for r in rs])

    async def judge(
        self,
        consumer: AIOKafkaConsumer,
        admin: AIOKafkaAdminClient,
        written: WrittenEnds,
        timeout_s: float = 10,
    ) -> None:
        committed_raw = await admin.list_consumer_group_offsets(self.group_id)
        committed = {
            (tp.topic, tp.partition): meta.offset
            for tp, meta in committed_raw.items()
            if tp.topic in self.feeds and meta is not None and meta.offset >= 0
        }
        correlated: dict[tuple[str, int], int] = {}
        if self.correlate_group is not None:
            raw = await admin.list_consumer_group_offsets(self.correlate_group)
            correlated = {
                (tp.topic, tp.partition): meta.offset
                for tp, meta in raw.items()
                if tp.topic == self.correlate_topic and meta is not None and meta.offset >= 0
            }
        # Then catch up with everything written so far, every transaction in it ended.
        ends = await written.of(consumer.assignment())
        deadline = time.monotonic() + timeout_s
        caught_up = False
        while time.monotonic() < deadline:
            positions = {tp: await consumer.position(tp) for tp in ends}
            if all(positions[tp] >= end for tp, end in ends.items()):
                caught_up = True
                break
            await self._poll(consumer, 200)
        snap = self.book.judge(committed, correlated=correlated, conclusive=caught_up)
        snap["as_of"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        snap["caught_up"] = caught_up
        snap["committed"] = {f"{t}[{p}]": o for (t, p), o in sorted(committed.items())}
        if snap["unaccounted"] or snap["duplicated"]:
            log.error(
                "ledger does not balance: %d unaccounted, %d duplicated (first: %s %s)",
                snap["unaccounted"],
                snap["duplicated"],
                snap["unaccounted_records"][:3],
                snap["duplicated_records"][:3],
            )
        self.snapshot = snap

    def stop(self) -> None:
        self._stopping = True


async def wait_assigned(consumer: AIOKafkaConsumer, timeout_s: float = 60.0) -> None:
    """Until a group-less subscription has its partitions (the topics must exist)."""
    for _ in range(int(timeout_s / 0.05)):
        if consumer.assignment():
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"no partitions assigned for {consumer.subscription()} (do the topics exist?)")


def set_aside_account(headers: Sequence[tuple[str, bytes]], feeds: Mapping[str, str]) -> Account | None:
    """The account of a dead-letter or quarantine copy of a legacy record (None: not a legacy record)."""
    h = {k: v.decode(errors="replace") for k, v in headers or ()}
    for prefix, outcome in _SET_ASIDE.items():
        topic = h.get(f"{prefix}_topic")
        if topic is not None and topic in feeds and f"{prefix}_offset" in h:
            return Account(topic, int(h[f"{prefix}_partition"]), int(h[f"{prefix}_offset"]), outcome)
    return None


LEDGER_RETRY_AFTER_S = 5


ledger_reader: Provided[LedgerReader] = Provided("intake_ledger")
Ledger = Annotated[LedgerReader, Depends(ledger_reader)]
routes = APIRouter()


@routes.get(
    "/ledger",
    summary="Every legacy record accounted for, per feed and hour",
    responses={503: {"description": "not judged yet after start (Retry-After says when to ask again)"}},
)
async def ledger(
    reader: Ledger, _: Annotated[Principal, Depends(require("read", "metrics"))]
) -> dict[str, Any]:
    """Per feed and hour: records received, what each became (case reported, linked, amended,
    cancelled, measurement, duplicate, dead letter, quarantine), still pending, and the alarms:
    `unaccounted` (committed with no outcome: lost) and `duplicated` (accounted twice)."""
    if reader.snapshot is None:
        # Temporary by contract: the first judgement follows reading the topics once.
        raise HTTPException(
            503, "the ledger is still being read", headers={"Retry-After": str(LEDGER_RETRY_AFTER_S)}
        )
    return reader.snapshot


def ledger_router(reader: LedgerReader) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["ledger"], dependencies=[ledger_reader.bind(reader)])
    r.include_router(routes)
    return r
