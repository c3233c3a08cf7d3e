"""The correlation stage on fakes (issue 13.8): reports of one incident read on different source
partitions are decided in their order keys' order, whatever the interleaving in which the forwarded
records reach the stage; a record waits until every source's watermark has passed it; the queue of a
partition survives a handover through its changelog; and each record is accounted by the stage that
decides it, once."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from aiokafka import TopicPartition
from support.records import BEIJING, HOME, cap_alert, party_diary, safety_event

from intake.domain.correlate import CorrelationQueue, Forwarded, Watermark, order_keys
from intake.domain.crosswalk import Crosswalk
from intake.domain.identity import case_id_for
from intake.domain.process import Intake
from intake.geography import ViewGeography
from intake.pipeline import IntakePipeline, IntakeTopics
from onegrid.kafka.memory import MemoryRecord
from onegrid.kafka.records import BatchResult, OutRecord

FEEDS = {"t.safety": "safety", "t.party": "party", "t.cap": "cap"}
TOPICS = IntakeTopics(
    feeds=dict(FEEDS), cases="t.cases", state="t.state", ledger="t.ledger", correlate="t.corr"
)
SOURCES = frozenset((f, p) for f in FEEDS.values() for p in (0, 1))
AT = datetime(2025, 5, 1, 9, 0, tzinfo=BEIJING)
T0 = 1_746_000_000_000


def make(reference_view) -> IntakePipeline:
    intake = Intake(crosswalk=Crosswalk.load(), geography=ViewGeography(reference_view), deferred=True)
    p = IntakePipeline(intake, topics=TOPICS)
    p.sources = SOURCES
    return p


def commit(result: BatchResult) -> list[OutRecord]:
    for apply in result.after_commit:
        apply()
    return result.outputs


def item(order: tuple[int, str, int, int]) -> Forwarded:
    return Forwarded(topic="t", partition=order[2], offset=order[3], feed=order[1], order=order, reports=())


def test_order_keys_follow_the_stream_time_of_their_partition() -> None:
    keys, stream = order_keys("cap", 1, 100, [(5, 90), (6, 300), (7, 200)])
    assert keys == [(100, "cap", 1, 5), (300, "cap", 1, 6), (300, "cap", 1, 7)] and stream == 300


def test_records_are_released_in_key_order_once_every_source_passed_them() -> None:
    q = CorrelationQueue()
    sources = frozenset({("a", 0), ("b", 0)})
    late, early = item((20, "a", 0, 1)), item((10, "b", 0, 0))
    r = q.plan([late, early], [Watermark(("a", 0), (21, "a", 0, 2))], sources)
    assert r.decide == [] and {h.order for h in r.hold} == {late.order, early.order}  # b sent nothing yet
    q.apply(r)
    r = q.plan([], [Watermark(("b", 0), (15, "b", 0, 1))], sources)
    assert [d.order for d in r.decide] == [early.order] and r.horizon == early.order
    q.apply(r)
    r = q.plan([], [Watermark(("b", 0), (30, "b", 0, 1))], sources)
    assert [d.order for d in r.decide] == [late.order]
    q.apply(r)
    assert q.held == {} and q.horizon == late.order
    # A record at or below the horizon (its source went back in time) is decided as it comes.
    r = q.plan([item((5, "a", 0, 9))], [], sources)
    assert [d.order for d in r.decide] == [(5, "a", 0, 9)]


def test_the_changelog_applies_only_what_is_newer() -> None:
    q = CorrelationQueue()
    q.observe_marks({"marks": [[["a", 0], [20, "a", 0, 3]]], "horizon": [10, "a", 0, 1]})
    q.observe_marks({"marks": [[["a", 0], [15, "a", 0, 2]]], "horizon": [5, "a", 0, 0]})  # read late
    assert q.marks == {("a", 0): (20, "a", 0, 3)} and q.horizon == (10, "a", 0, 1)
    q.observe_held((8, "a", 0, 0), item((8, "a", 0, 0)))  # decided already (below the horizon)
    q.observe_held((12, "a", 0, 2), item((12, "a", 0, 2)))
    assert list(q.held) == [(12, "a", 0, 2)]
    q.observe_held((12, "a", 0, 2), None)
    assert q.held == {}


def incident() -> list[MemoryRecord]:
    """One fire, reported by three networks on three topics, each on its own partition; timestamps
    say who came first (party, then safety, then CAP); plus a lone safety event elsewhere."""
    close = (HOME[0] + 0.001, HOME[1])
    far = (HOME[0] + 0.05, HOME[1] + 0.05)
    return [
        MemoryRecord("t.party", 1, 0, b"p", party_diary("MQRJ0000000000001", wgs=close, when=AT), (), T0),
        MemoryRecord(
            "t.safety", 0, 0, b"s", safety_event("PA32100320250000000001", wgs=HOME, when=AT), (), T0 + 5
        ),
        MemoryRecord(
            "t.cap", 0, 0, b"c", cap_alert("YZ-U-1", centre=HOME, sent=AT + timedelta(minutes=2)), (), T0 + 9
        ),
        MemoryRecord(
            "t.safety",
            1,
            0,
            b"x",
            safety_event("PA32100320250000000002", code="0101", wgs=far, when=AT),
            (),
            T0 + 12,
        ),
    ]


async def stage_one(p: IntakePipeline, records: Sequence[MemoryRecord]) -> list[OutRecord]:
    """Each source partition read on its own (as one batch of an exactly-once loop), then every
    partition's watermark moved past the input (as an idle partition's tick does)."""
    out = []
    for rec in records:
        out += commit(await p.handle([rec]))
    for topic in FEEDS:
        for part in (0, 1):
            key = (topic, part)
            p.marks[key] = (max(p.marks.get(key, (0, 0))[0], T0 + 1000), p.marks.get(key, (0, 0))[1])
            out += p._watermark(key, p.marks[key])
    return out


def as_records(outs: Sequence[OutRecord]) -> list[MemoryRecord]:
    return [MemoryRecord(o.topic, 0, i, o.key, o.value, tuple(o.headers), 0) for i, o in enumerate(outs)]


async def stage_two(p: IntakePipeline, forwarded: Sequence[OutRecord], batch: int) -> list[OutRecord]:
    p.take_over(0)
    recs = as_records(forwarded)
    out = []
    for i in range(0, len(recs), batch):
        out += commit(await p.correlate(recs[i : i + batch]))
    return out


def source_of(o: OutRecord) -> tuple[str, int]:
    h = dict(o.headers)
    if h["kind"] == b"forwarded":
        topic, part, _ = json.loads(h["origin"])
        return (FEEDS[topic], part)
    src = json.loads(o.value or b"{}")["source"]
    return (src[0], src[1])


def interleave(rng: random.Random, outs: list[OutRecord]) -> list[OutRecord]:
    """A random merge of the sources' sequences, each kept in order (as instances produce them:
    one transaction after another per source partition)."""
    queues: dict[tuple[str, int], list[OutRecord]] = {}
    for o in outs:
        queues.setdefault(source_of(o), []).append(o)
    merged = []
    while queues:
        src = rng.choice(sorted(queues))
        merged.append(queues[src].pop(0))
        if not queues[src]:
            del queues[src]
    return merged


def cases_of(outs: Sequence[OutRecord]) -> set[tuple[str, str, str]]:
    return {
        (e["case_id"], e["event_type"], e["source"]["source_id"])
        for e in (json.loads(o.value) for o in outs if o.topic == "t.cases" and o.value)
    }


async def test_the_same_cases_whatever_the_interleaving_and_batches(reference_view) -> None:
    records = incident()
    results = set()
    rng = random.Random(5)
    for perm in itertools.permutations(records):
        p = make(reference_view)
        forwarded = [o for o in await stage_one(p, perm) if o.topic == "t.corr"]
        out = await stage_two(make_from(p), interleave(rng, forwarded), batch=rng.choice([1, 2, 5]))
        results.add(frozenset(cases_of(out)))
    assert len(results) == 1
    (cases,) = results
    party_case = str(case_id_for("party", "MQRJ0000000000001"))  # the first report by stream time
    assert sorted(t for c, t, _ in cases if c == party_case) == [
        "case.linked",
        "case.linked",
        "case.reported",
    ]
    assert len({c for c, _, _ in cases}) == 2


def make_from(p: IntakePipeline) -> IntakePipeline:
    """A fresh correlation stage (as on another instance) with the same sources."""
    q = IntakePipeline(p.intake, topics=TOPICS)
    q.sources = p.sources
    return q


async def test_stage_one_forwards_and_accounts_only_what_it_decides(reference_view) -> None:
    p = make(reference_view)
    bad = MemoryRecord("t.party", 0, 0, b"b", b'{"rjbh": ', (), T0)
    good = incident()[0]
    r1 = await p.handle([bad])
    r2 = await p.handle([good])
    assert len(r1.dead_letters) == 1 and not [o for o in r1.outputs if o.topic == "t.ledger"]
    assert not [o for o in r2.outputs if o.topic in ("t.ledger", "t.cases")]
    kinds = [dict(o.headers).get("kind") for o in r2.outputs if o.topic == "t.corr"]
    assert kinds == [b"forwarded", b"watermark"]


async def test_every_forwarded_record_is_accounted_once_by_the_stage(reference_view) -> None:
    p = make(reference_view)
    records = incident()
    dup = MemoryRecord("t.party", 1, 1, b"p", records[0].value, (), T0 + 20)  # the same diary again
    forwarded = [o for o in await stage_one(p, [*records, dup]) if o.topic == "t.corr"]
    out = await stage_two(make_from(p), forwarded, batch=3)
    accounts = [
        (e["topic"], e["partition"], r["offset"], r["outcome"])
        for e in (json.loads(o.value) for o in out if o.topic == "t.ledger")
        for r in e["records"]
    ]
    assert sorted(accounts) == sorted(
        [
            ("t.party", 1, 0, "case.reported"),
            ("t.party", 1, 1, "duplicate"),
            ("t.safety", 0, 0, "case.linked"),
            ("t.cap", 0, 0, "case.linked"),
            ("t.safety", 1, 0, "case.reported"),
        ]
    )


async def test_a_new_owner_continues_from_the_committed_queue(reference_view) -> None:
    """Half the forwarded records taken in (and held: a source's watermark is missing) by one owner;
    its changelog read by another, which takes the partition over and decides the rest."""
    p = make(reference_view)
    forwarded = [o for o in await stage_one(p, incident()) if o.topic == "t.corr"]
    items = [o for o in forwarded if dict(o.headers)["kind"] == b"forwarded"]
    marks = [o for o in forwarded if dict(o.headers)["kind"] == b"watermark"]
    first = make_from(p)
    first.take_over(0)
    out = commit(await first.correlate(as_records(items + marks[:-1])))
    assert not cases_of(out), "held until every source has passed them"
    second = make_from(p)
    changelog = [o for o in out if o.topic == "t.state"]
    await second.observe_state(as_records(changelog))
    second.take_over(0)
    assert len(second.queues[0].held) == len(items)
    out2 = commit(await second.correlate(as_records(marks[-1:])))
    reference = await stage_two(make_from(p), forwarded, batch=len(forwarded))
    assert cases_of(out2) == cases_of(reference) and len(cases_of(out2)) == 4


async def test_an_idle_partition_sends_its_watermark_only_when_read_to_its_end(reference_view) -> None:
    p = make(reference_view)
    tp = TopicPartition("t.cap", 1)
    ends = {tp: False}

    async def caught_up(t: TopicPartition) -> bool:
        return ends[t]

    p.caught_up = caught_up
    assert (await p.tick(tp)).outputs == []
    ends[tp] = True
    outs = commit(await p.tick(tp))
    wm = [json.loads(o.value) for o in outs if o.topic == "t.corr"]
    assert wm and wm[0]["source"] == ["cap", 1]
    assert wm[0]["upto"][0] >= int(datetime.now(UTC).timestamp() * 1000) - 60_000


async def test_a_batch_that_reads_its_partition_to_the_end_marks_it_at_the_clock(reference_view) -> None:
    """A partition read to its end by a batch moves its watermark on to the clock (as an idle
    partition's tick does), so the stage decides the round's records together instead of holding
    each until every other partition sends a later one; a partition with records still unread
    marks its last record's key, and its later records are keyed from the mark on."""
    p = make(reference_view)
    ends: dict[TopicPartition, int] = {}
    p.read_to_end = lambda tp, offset: offset >= ends.get(tp, 0)
    first, second = incident()[0], incident()[1]  # party[1]@0 at T0, safety[0]@0 at T0+5
    ends[TopicPartition("t.party", 1)] = 1  # nothing after it
    ends[TopicPartition("t.safety", 0)] = 7  # six more records to come
    before = int(datetime.now(UTC).timestamp() * 1000)
    marks = [
        json.loads(o.value)["upto"]
        for rec in (first, second)
        for o in commit(await p.handle([rec]))
        if dict(o.headers).get("kind") == b"watermark"
    ]
    assert marks[0][1:] == ["party", 1, 1] and marks[0][0] >= before
    assert marks[1] == [T0 + 5, "safety", 0, 1]
    # The next record of the party partition, stamped before the clock mark, is keyed after it.
    later = MemoryRecord(
        "t.party", 1, 1, b"p2", party_diary("MQRJ0000000000009", wgs=HOME, when=AT), (), T0 + 50
    )
    ends[TopicPartition("t.party", 1)] = 2
    fwd = [o for o in commit(await p.handle([later])) if dict(o.headers).get("kind") == b"forwarded"]
    assert json.loads(dict(fwd[0].headers)["order"])[0] >= marks[0][0]


async def test_records_of_partitions_read_to_their_ends_are_decided_in_one_round(reference_view) -> None:
    """With every source read to its end, the stage holds nothing: the round's records are decided
    as soon as it reads them (nothing written to its changelog as held)."""
    p = make(reference_view)
    p.read_to_end = lambda _tp, _offset: True
    out = []
    for rec in incident():
        out += commit(await p.handle([rec]))
    for topic in FEEDS:  # the partitions the incident has no record on: idle, read to their ends
        for part in (0, 1):
            if (topic, part) not in p.marks:
                p.marks[(topic, part)] = (int(datetime.now(UTC).timestamp() * 1000), 0)
                out += p._watermark((topic, part), p.marks[(topic, part)])
    stage = make_from(p)
    stage.take_over(0)
    decided = commit(await stage.correlate(as_records([o for o in out if o.topic == "t.corr"])))
    assert len(cases_of(decided)) == 4 and stage.queues[0].held == {}
    assert not [o for o in decided if o.topic == "t.state" and b":held:" in (o.key or b"")]


async def test_an_idle_partition_answers_a_held_record_at_its_next_tick(reference_view) -> None:
    """Ticks come often; an idle partition sends its watermark on the heartbeat, and sooner only when
    a correlation queue (its changelog copy included) holds a record above the partition's mark."""
    p = make(reference_view)
    p.watermark_interval_s = 3600.0
    tp = TopicPartition("t.cap", 1)

    async def caught_up(_t: TopicPartition) -> bool:
        return True

    p.caught_up = caught_up
    first = commit(await p.tick(tp))
    assert [o for o in first if o.topic == "t.corr"], "the first tick is a heartbeat"
    assert commit(await p.tick(tp)) == [], "nothing waits and the heartbeat is not due"
    mark_ms = p.marks[("t.cap", 1)][0]
    waiting = item((mark_ms + 5_000, "party", 0, 3))  # a record the stage holds, above the mark
    q = CorrelationQueue()
    q.observe_held(waiting.order, waiting)
    p.committed_queues[0] = q
    assert q.newest_held() == waiting.order
    answered = [json.loads(o.value) for o in commit(await p.tick(tp)) if o.topic == "t.corr"]
    assert answered and answered[0]["source"] == ["cap", 1]
    q.observe_held(waiting.order, None)  # decided: nothing waits any more
    assert q.newest_held() is None and commit(await p.tick(tp)) == []
