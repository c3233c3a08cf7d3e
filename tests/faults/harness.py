"""The fault suite's instrument: the whole stack in cluster mode (3 brokers, 2 instances of every
consumer service) under seeded traffic from the simulated networks, faults injected by pid from
`endpoints.json`, and an end-to-end comparison of ids after each scenario:

legacy record -> ledger (each accounted once) -> cases.v1 (no event twice, no second case.reported
for one source or one HJ 212 episode, the same incidents merged as a single-instance run of the same
input) -> orders (no second order) -> lifecycle (no transition twice, each deadline fires once) ->
audit trail (every record of every audited topic once, and the export verifies).

The checks are cumulative: after each scenario everything since the start must still hold.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from devstack.kafka import KafkaBroker
from devstack.stack import Instance, Stack
from onegrid.kafka.cluster import group_states, leader_counts, partition_states
from onegrid.settings import KafkaSettings
from onegrid.topics import (
    AUDIT_DLQ,
    CASE_LIFECYCLE,
    CASES,
    DISPATCH_DLQ,
    EVALUATION_DLQ,
    GRID_REGISTRY,
    INTAKE_DLQ,
    INTAKE_LEDGER,
    LEGACY_EMERGENCY_CAP,
    LEGACY_ENV_HJ212,
    LEGACY_OPEN311,
    LEGACY_PARTY,
    LEGACY_PATROL,
    LEGACY_SAFETY,
    OPEN311_DLQ,
)

LEGACY = (LEGACY_ENV_HJ212, LEGACY_EMERGENCY_CAP, LEGACY_SAFETY, LEGACY_PARTY, LEGACY_OPEN311, LEGACY_PATROL)
DEAD_LETTERS = (INTAKE_DLQ, DISPATCH_DLQ, EVALUATION_DLQ, OPEN311_DLQ, AUDIT_DLQ)
CONSUMER_SERVICES = ("grid-registry", "intake", "dispatch", "audit", "evaluation", "open311")


@dataclass
class Result:
    """One scenario's figures (deltas since the previous scenario) and its violations."""

    name: str
    seconds: float = 0.0
    # Where the time went: traffic and fault, draining, the end-to-end comparison.
    phases: dict[str, float] = field(default_factory=dict)
    figures: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


COLUMNS = (
    ("legacy", "legacy records"),
    ("accounted", "accounted"),
    ("reported", "case.reported"),
    ("linked", "case.linked"),
    ("orders", "orders"),
    ("lifecycle", "lifecycle"),
    ("audit", "audit entries"),
    ("unaccounted", "unaccounted"),
    ("duplicated", "duplicated"),
)


def table(results: Iterable[Result]) -> str:
    head = (
        f"{'scenario':<50} {'s':>5} {'fault':>5} {'drain':>5} {'check':>5} "
        + " ".join(f"{c:>11}" for c, _ in COLUMNS)
        + "  result"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        cells = " ".join(f"{r.figures.get(c, 0):>11}" for c, _ in COLUMNS)
        phases = " ".join(f"{r.phases.get(p, 0):>5.0f}" for p in ("fault", "drain", "check"))
        verdict = "ok" if r.ok else "FAIL: " + "; ".join(r.problems)[:400]
        lines.append(f"{r.name:<50} {r.seconds:>5.0f} {phases} {cells}  {verdict}")
    return "\n".join(lines)


class System:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.kafka = KafkaSettings(bootstrap_servers=stack.bootstrap)
        self.token = stack.admin_token()
        self.previous: dict[str, int] = {}
        self.traffic_seed = 1000
        self.stopped: set[str] = set()  # instances a scenario stopped on purpose (not yet restarted)

    # -- processes ------------------------------------------------------------------------------

    def broker(self, node_id: int) -> KafkaBroker:
        assert self.stack.cluster is not None
        return self.stack.cluster.node(node_id)

    def instance(self, service: str, index: int) -> Instance:
        return next(i for i in self.stack.all_instances() if i.spec.name == service and i.index == index)

    def pid(self, inst: Instance) -> int:
        return int((self.stack.run / f"{inst.name}.pid").read_text())

    def alive(self, inst: Instance) -> bool:
        from devstack.stack import _alive

        return _alive(self.stack.run / f"{inst.name}.pid") is not None

    def signal_instance(self, inst: Instance, sig: int) -> None:
        os.killpg(self.pid(inst), sig)

    def restart_instance(self, inst: Instance) -> None:
        pid = self.pid(inst)
        try:  # reap it, so that the pid file's process is really gone
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        self.stack._start_service(inst, human_logs=False)
        self.stack._wait_healthy(inst)
        self.stopped.discard(inst.name)

    def stop_instance(self, inst: Instance) -> None:
        from devstack.kafka import stop_process_group

        self.stopped.add(inst.name)
        stop_process_group(self.pid(inst), timeout_s=35)

    async def leader_heavy_broker(self) -> int:
        counts = leader_counts(await partition_states(self.kafka))
        return max(counts, key=lambda b: counts[b])

    async def restart_broker(self, node_id: int) -> None:
        b = self.broker(node_id)
        if b.process is not None:
            b.process.wait()
        b.start()
        await b.wait_ready()
        await self.wait_in_sync()

    async def wait_in_sync(self, timeout_s: float = 180) -> None:
        """Every partition has its full ISR again (so the next fault starts from a healthy cluster)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                states = await partition_states(self.kafka)
                if states and all(not s.under_replicated and s.leader >= 0 for s in states):
                    return
            except Exception:
                pass
            await asyncio.sleep(1)
        raise TimeoutError("partitions did not return to a full ISR")

    async def group_members(self, group: str) -> list[str]:
        try:
            return [m.client_id for g in await group_states(self.kafka, [group]) for m in g.members]
        except Exception:
            return []

    # -- traffic --------------------------------------------------------------------------------

    def traffic(self, duration_s: float, rate: float = 12.0) -> subprocess.Popen[bytes]:
        """Seeded records of all five feeds, in the simulators' formats, for `duration_s`."""
        self.traffic_seed += 1
        env = {**os.environ, "ONEGRID_RUN": str(self.stack.run)}
        log = (self.stack.logs / "traffic.log").open("ab")
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "simulators",
                "networks",
                "--rate",
                str(rate),
                "--duration",
                str(duration_s),
                "--seed",
                str(self.traffic_seed),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    # -- draining and reading -------------------------------------------------------------------

    def ledger(self, inst: Instance | None = None) -> dict[str, Any]:
        inst = inst or self.instance("intake", 0)
        req = urllib.request.Request(
            f"{inst.url}/v1/ledger", headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            doc: dict[str, Any] = json.loads(resp.read())
            return doc

    async def outbox_backlog(self) -> dict[str, int]:
        """Rows waiting in every service's outbox (dispatch's lifecycle and orders, the registry's
        records): until a relay has published them, what they say is on no topic yet."""
        import asyncpg  # type: ignore[import-untyped]

        conn = await asyncpg.connect(self.stack.database_url, timeout=10)
        try:
            schemas = [
                r["table_schema"]
                for r in await conn.fetch(
                    "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'"
                )
            ]
            return {s: int(await conn.fetchval(f'SELECT count(*) FROM "{s}".outbox')) for s in schemas}
        finally:
            await conn.close()

    def relaying(self, service: str, *, besides: Instance | None = None) -> list[Instance]:
        """The instances of `service` (but `besides`, which may be stopped and would not answer)
        whose outbox relay holds its table now, as their /metrics say."""
        active = re.compile(r"^onegrid_outbox_relay_active\{[^}]*\} 1(\.0)?$", re.MULTILINE)
        out = []
        for inst in self.stack.all_instances():
            if inst.spec.name != service or inst is besides or inst.name in self.stopped:
                continue
            try:
                with urllib.request.urlopen(f"{inst.url}/metrics", timeout=10) as resp:
                    if active.search(resp.read().decode()):
                        out.append(inst)
            except OSError:
                continue
        return out

    def liveness(self) -> dict[str, int]:
        """Each instance's /healthz status (500 once a consumer loop or background job died; 0: no
        answer), but for those a scenario stopped on purpose."""
        out: dict[str, int] = {}
        for inst in self.stack.all_instances():
            if inst.name in self.stopped:
                continue
            try:
                with urllib.request.urlopen(f"{inst.url}/healthz", timeout=10) as resp:
                    out[inst.name] = resp.status
            except urllib.error.HTTPError as exc:
                out[inst.name] = exc.code
            except OSError:
                out[inst.name] = 0
        return out

    async def drain(self, timeout_s: float = 240) -> dict[str, Any]:
        """Until the business traffic has settled: the ledger has nothing pending and has caught up,
        every outbox is empty (dispatch's lifecycle and orders are on their topics, not only in its
        database), every reported case is registered by dispatch, and on the business topics (legacy feeds, cases, lifecycle, orders) every end offset and every
        committed offset of every group reading them (the audit trail's included) stay the same over
        three looks. Control topics are left out: the correlation stage's clock watermarks and state
        take records about once a second even while the system is idle, so they never stand still.
        (A lag of one or more can remain for good on a business topic: a transaction's commit or
        abort marker, or an aborted batch, takes offsets no consumer ever commits past.)"""
        from onegrid.kafka.admin import consumer_lag

        deadline = time.monotonic() + timeout_s
        still = 0
        seen: object = None
        last: dict[str, Any] = {}
        backlog: dict[str, int] = {}
        behind: set[str] = set()
        while time.monotonic() < deadline:
            try:
                lags = await consumer_lag(self.kafka)
                now = sorted(
                    (r.group, r.topic, r.partition, r.committed, r.end) for r in lags if _business(r.topic)
                )
                last = self.ledger()
                backlog = await self.outbox_backlog()
                settled = (
                    last.get("pending", 1) == 0
                    and bool(last.get("caught_up"))
                    and not any(backlog.values())
                    and _read_by(now, "audit.")
                    and _read_by(now, "dispatch")
                    and now == seen
                )
                seen = now
            except Exception:
                settled = False
            still = still + 1 if settled else 0
            if still >= 2:
                # Dispatch has caught up too: its offsets may stand still while it waits out a retry
                # (the database just back), with reported cases not yet registered.
                behind = await self.unregistered()
                if not behind:
                    return last
                still = 0
            await asyncio.sleep(2)
        raise TimeoutError(
            f"the system did not drain within {timeout_s}s (ledger: {_brief(last)}; outboxes: {backlog}; "
            f"reported cases not registered: {len(behind)})"
        )

    async def unregistered(self) -> set[str]:
        """Reported cases with no registration (their first transition) on the lifecycle topic."""
        data = await self.read([CASES, CASE_LIFECYCLE])
        cases = [json.loads(r.value) for r in data[CASES] if r.value]
        lifecycle = [json.loads(r.value) for r in data[CASE_LIFECYCLE] if r.value]
        return unregistered(cases, lifecycle)

    async def read(self, topics: list[str]) -> dict[str, list[Any]]:
        """Every committed record of `topics`, up to their current end."""
        consumer = AIOKafkaConsumer(
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            **self.kafka.client_kwargs(),
        )
        await consumer.start()
        out: dict[str, list[Any]] = {t: [] for t in topics}
        try:
            parts = [TopicPartition(t, p) for t in topics for p in sorted(await _partitions(consumer, t))]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if all([await consumer.position(tp) >= e for tp, e in ends.items()]):
                    break
                for tp, rs in (await consumer.getmany(timeout_ms=500, max_records=10000)).items():
                    out[tp.topic].extend(rs)
        finally:
            await consumer.stop()
        return out

    async def order_topics(self) -> list[str]:
        admin = AIOKafkaAdminClient(**self.kafka.client_kwargs())
        await admin.start()
        try:
            return sorted(t for t in await admin.list_topics() if t.startswith("dispatch.orders."))
        finally:
            await admin.close()

    def audit_export(self) -> tuple[bytes, bytes, str]:
        audit = self.instance("audit", 0)
        headers = {"Authorization": f"Bearer {self.token}"}

        def get(path: str) -> bytes:
            req = urllib.request.Request(f"{audit.url}{path}", headers=headers)
            with urllib.request.urlopen(req, timeout=120) as resp:
                body: bytes = resp.read()
                return body

        key = json.loads(get("/v1/public-key"))["pem"]
        # Heads first: the trail may still take entries (topics the drain does not wait for, such as
        # the registry's) and sign a head between two requests; entries after the newest head are
        # uncovered (allowed), a head beyond the entries fetched would read as a truncated export.
        heads = get("/v1/export/heads.jsonl")
        return get("/v1/export/entries.jsonl"), heads, key

    # -- the comparison -------------------------------------------------------------------------

    async def check(self, result: Result) -> None:
        started = time.monotonic()
        ledger = await self.drain()
        result.phases["drain"] = time.monotonic() - started
        started = time.monotonic()
        try:
            await self._compare(result, ledger)
        finally:
            result.phases["check"] = time.monotonic() - started

    async def _compare(self, result: Result, ledger: dict[str, Any]) -> None:
        # The trail's export is fetched while the topics are read (both after the drain).
        export = asyncio.ensure_future(asyncio.to_thread(self.audit_export))
        orders_topics = await self.order_topics()
        data = await self.read(
            [*LEGACY, CASES, CASE_LIFECYCLE, GRID_REGISTRY, INTAKE_LEDGER, *DEAD_LETTERS, *orders_topics]
        )
        legacy = [r for t in LEGACY for r in data[t]]
        cases = [json.loads(r.value) for r in data[CASES] if r.value]
        lifecycle = [json.loads(r.value) for r in data[CASE_LIFECYCLE] if r.value]
        orders = [json.loads(r.value) for t in orders_topics for r in data[t] if r.value]
        p = result.problems

        # A fault is no record's fault: the loop sets a record aside as poison ("unhandled.*") only
        # for an error of the record's own, and the traffic's bad input has reasons of its own.
        poison = [
            (r.topic, dict(r.headers).get("dlq_reason", b"").decode(), dict(r.headers).get("dlq_detail", b""))
            for t in DEAD_LETTERS
            for r in data[t]
            if dict(r.headers).get("dlq_reason", b"").startswith(b"unhandled.")
        ]
        if poison:
            p.append(f"{len(poison)} records dead-lettered as poison under the fault: {poison[:2]}")

        # legacy -> ledger
        if ledger["unaccounted"] or ledger["duplicated"] or not ledger["balanced"]:
            p.append(
                f"ledger: {ledger['unaccounted']} unaccounted {ledger['unaccounted_records'][:3]}, "
                f"{ledger['duplicated']} duplicated {ledger['duplicated_records'][:3]}"
            )
        if ledger["totals"]["received"] != len(legacy):
            p.append(f"ledger received {ledger['totals']['received']} of {len(legacy)} legacy records")
        entries = [json.loads(r.value) for r in data[INTAKE_LEDGER] if r.value]
        accounts = Counter(
            (e["topic"], e["partition"], rec["offset"]) for e in entries for rec in e["records"]
        )
        if accounts and max(accounts.values()) > 1:
            p.append(f"ledger: {sum(1 for v in accounts.values() if v > 1)} records with two accounts")

        # ledger -> cases.v1
        event_ids = Counter(c["event_id"] for c in cases)
        dup_events = sum(1 for v in event_ids.values() if v > 1)
        if dup_events:
            p.append(f"cases.v1: {dup_events} events published twice")
        reported = [c for c in cases if c["event_type"] == "case.reported"]
        by_case = Counter(c["case_id"] for c in reported)
        if reported and max(by_case.values()) > 1:
            p.append(f"cases.v1: {sum(1 for v in by_case.values() if v > 1)} cases reported twice")
        episodes = Counter(
            c["attributes"]["episode_id"]
            for c in reported
            if isinstance(c.get("attributes"), dict) and c["attributes"].get("episode_id")
        )
        if episodes and max(episodes.values()) > 1:
            p.append(f"HJ 212: {sum(1 for v in episodes.values() if v > 1)} episodes reported twice")
        ledger_reported = {
            cid
            for e in entries
            for rec in e["records"]
            if rec["outcome"] == "case.reported"
            for cid in rec["cases"]
        }
        legacy_reported = {c["case_id"] for c in reported if not _from_the_clock(c)}
        if ledger_reported != legacy_reported:
            p.append(
                f"ledger vs cases.v1: {len(ledger_reported - legacy_reported)} reported only in the ledger, "
                f"{len(legacy_reported - ledger_reported)} only on cases.v1"
            )
        reference = await asyncio.to_thread(self.single_instance_groups, legacy, data[GRID_REGISTRY])
        live = case_groups(c for c in cases if not _from_the_clock(c))
        if reference != live:
            p.append(
                f"correlation differs from a single-instance run: {len(live - reference)} groups only live, "
                f"{len(reference - live)} only in the reference"
            )

        # cases -> dispatch: every reported case is registered (its first transition, from no state)
        never = unregistered(cases, lifecycle)
        if never:
            p.append(f"dispatch: {len(never)} reported cases never registered {sorted(never)[:3]}")
        # no instance carries on with a dead loop or background job (liveness fails then)
        dead = {name: code for name, code in (await asyncio.to_thread(self.liveness)).items() if code != 200}
        if dead:
            p.append(f"liveness: {dead}")

        # cases -> orders
        order_keys = Counter((o["case_id"], o["hop"], o["kind"], o["department"]) for o in orders)
        dup_orders = sum(1 for v in order_keys.values() if v > 1)
        if dup_orders:
            p.append(f"orders: {dup_orders} orders issued twice")
        unknown = {o["case_id"] for o in orders} - {c["case_id"] for c in cases}
        if unknown:
            p.append(f"orders: {len(unknown)} orders for cases not on cases.v1")

        # orders -> lifecycle
        steps = Counter((e["case_id"], e["seq"]) for e in lifecycle)
        lc_events = Counter(e["event_id"] for e in lifecycle)
        if (steps and max(steps.values()) > 1) or (lc_events and max(lc_events.values()) > 1):
            p.append(f"lifecycle: {sum(1 for v in steps.values() if v > 1)} transitions written twice")
        fired = Counter(
            (e["case_id"], e["reason"], e["from_state"])
            for e in lifecycle
            if str(e.get("reason") or "").startswith("sla.")
        )
        if fired and max(fired.values()) > 1:
            p.append(f"deadlines: {sum(1 for v in fired.values() if v > 1)} fired twice")

        # -> audit trail
        audit_entries, heads, key = await export
        audit_count = self.check_audit(audit_entries, heads, key, data, p)

        now = {
            "legacy": len(legacy),
            "accounted": sum(ledger["totals"].values()) - ledger["totals"]["received"],
            "reported": len(reported),
            "linked": sum(1 for c in cases if c["event_type"] == "case.linked"),
            "orders": len(orders),
            "lifecycle": len(lifecycle),
            "audit": audit_count,
        }
        result.figures = {k: v - self.previous.get(k, 0) for k, v in now.items()}
        result.figures["unaccounted"] = ledger["unaccounted"]
        result.figures["duplicated"] = ledger["duplicated"] + dup_events + dup_orders
        self.previous = now

    def check_audit(
        self, entries: bytes, heads: bytes, key_pem: str, data: dict[str, list[Any]], p: list[str]
    ) -> int:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        from audit.verify import read_entries, read_heads, verify_export

        key = load_pem_public_key(key_pem.encode())
        verdict = verify_export(read_entries(entries.splitlines()), read_heads(heads.splitlines()), key)  # type: ignore[arg-type]
        if not verdict.ok:
            p.append(f"audit export does not verify: {verdict}")
        lines = [json.loads(x) for x in entries.splitlines() if x.strip()]
        seqs = [x["seq"] for x in lines]
        if seqs != list(range(len(seqs))):
            p.append("audit: the log has gaps")
        positions = Counter((x["topic"], x["partition"], x["offset"]) for x in lines)
        twice = sum(1 for v in positions.values() if v > 1)
        if twice:
            p.append(f"audit: {twice} records entered twice")
        audited = {x["topic"] for x in lines}
        for topic in (CASES, CASE_LIFECYCLE, *LEGACY):
            if topic not in audited and not data.get(topic):
                continue
            want = {(topic, r.partition, r.offset) for r in data.get(topic, [])}
            have = {k for k in positions if k[0] == topic}
            if want - have:
                p.append(f"audit: {len(want - have)} records of {topic} missing from the trail")
        return len(lines)

    def single_instance_groups(self, legacy: list[Any], registry: list[Any]) -> set[frozenset[str]]:
        """The same legacy records through one intake core, in one process, in time order."""
        return _reference(legacy, registry)


def _reference(legacy: list[Any], registry: list[Any]) -> set[frozenset[str]]:
    from intake.domain.correlation import CaseBook, correlation_windows
    from intake.domain.crosswalk import Crosswalk
    from intake.domain.feeds.open311.record import reports_from_open311
    from intake.domain.normalize import Provenance
    from intake.domain.process import LEGACY_FEEDS, Inbound, Intake
    from intake.geography import ViewGeography
    from onegrid.envelope import header_dict
    from registry_client import RegistryView

    view = RegistryView()
    _apply_sync(view, registry)
    intake = Intake(
        crosswalk=Crosswalk.load(),
        geography=ViewGeography(view),
        book=CaseBook(windows=correlation_windows({})),
        open311=lambda inbound: reports_from_open311(inbound.value, inbound.headers),
    )
    ordered = sorted(legacy, key=lambda r: (r.timestamp, r.topic, r.partition, r.offset))
    events = []
    for i in range(0, len(ordered), 200):
        batch = [
            Inbound(
                LEGACY_FEEDS[r.topic],
                r.value or b"",
                Provenance(r.topic, r.partition, r.offset, datetime.fromtimestamp(r.timestamp / 1000, UTC)),
                header_dict(r.headers),
            )
            for r in ordered[i : i + 200]
        ]
        outcome = intake.process(batch)
        outcome.apply()
        events += [json.loads(_encode(ev)) for o in outcome.outcomes if o.error is None for ev in o.events]
    return case_groups(events)


def _encode(ev: Any) -> bytes:
    from onegrid_contracts.case_event import encode_case_event

    return encode_case_event(ev)


def _apply_sync(view: Any, registry: list[Any]) -> None:
    """RegistryView.handle is a coroutine that never awaits I/O: drive it by hand inside a loop."""
    coro = view.handle(registry)
    try:
        coro.send(None)
    except StopIteration:
        return
    raise RuntimeError("RegistryView.handle awaited something")


def case_groups(events: Iterable[dict[str, Any]]) -> set[frozenset[str]]:
    """Which source records ended up in one case: the incidents, independent of which came first."""
    groups: dict[str, set[str]] = {}
    for c in events:
        if c["event_type"] in ("case.reported", "case.linked"):
            src = c["source"]
            groups.setdefault(c["case_id"], set()).add(f"{src['network']}:{src['source_id']}")
    return {frozenset(g) for g in groups.values()}


def unregistered(cases: Iterable[dict[str, Any]], lifecycle: Iterable[dict[str, Any]]) -> set[str]:
    """Case ids reported on cases.v1 with no registration (a transition from no state) by dispatch."""
    registered = {e["case_id"] for e in lifecycle if e.get("from_state") is None}
    return {c["case_id"] for c in cases if c["event_type"] == "case.reported"} - registered


def _from_the_clock(case: dict[str, Any]) -> bool:
    """Case events intake makes on its own clock (a station gone silent), not from a legacy record."""
    attrs = case.get("attributes") or {}
    return isinstance(attrs, dict) and attrs.get("kind") == "silence"


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(100):
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return set(parts)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)
    return set()


def _business(topic: str) -> bool:
    """A topic whose records the comparison counts (not a stage's watermarks or state)."""
    return topic in (*LEGACY, CASES, CASE_LIFECYCLE) or (
        topic.startswith("dispatch.orders.") and topic.endswith(".v1")
    )


def _read_by(rows: list[tuple[Any, ...]], group_prefix: str) -> bool:
    """A group of that prefix has committed on cases.v1 (until it does, its lag is not seen at all)."""
    return any(str(group).startswith(group_prefix) and topic == CASES for group, topic, *_ in rows)


def _brief(ledger: dict[str, Any]) -> str:
    keys = ("pending", "unaccounted", "duplicated", "caught_up")
    return ", ".join(f"{k}={ledger.get(k)}" for k in keys)


def sigkill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
