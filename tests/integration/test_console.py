"""The operations console end to end, looked at through headless Chromium.

On the session's broker and database, with test-private topics: intake (in process) turns legacy
party diaries into cases, the audit service taps every topic, and both export their spans by OTLP to
the console. One diary is sent by a traced "gateway"; one has an unmapped code and is quarantined.
Chromium then loads the console's pages as a user would (JavaScript polling the JSON API) and the
dumped DOM must show live (non-zero) throughput on the cases topic, the quarantined record, the SLA
escalation, and on the case's page its audit trail (the legacy packet and the case event) and its
trace (the gateway's span with intake's batch and processing spans under it). Finally the quarantined
record is replayed and comes back quarantined again, still unmapped, saying who replayed it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaProducer
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from support.audit_trail import asyncpg_url

from audit.bootstrap import bootstrap as audit_bootstrap
from audit.settings import Settings as AuditSettings
from console.bootstrap import bootstrap as console_bootstrap
from console.settings import Settings as ConsoleSettings
from devstack.paths import free_port
from intake.bootstrap import intake_parts
from intake.domain.identity import case_id_for
from intake.pipeline import IntakeTopics
from onegrid import telemetry
from onegrid.kafka.admin import ensure_topics
from onegrid.kafka.loop import ConsumerLoop, LoopConfig, make_consumer
from onegrid.kafka.producer import make_producer, partition_producers
from onegrid.settings import KafkaSettings, TelemetrySettings
from onegrid.topics import TopicSpec

from .conftest import read_all

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.auth import ADMIN
from support.records import BEIJING, HOME, party_diary

ADMIN_TOKEN = ADMIN["Authorization"].removeprefix("Bearer ")

pytestmark = pytest.mark.asyncio(loop_scope="session")
ROOT = Path(__file__).resolve().parents[2]
LIFECYCLE_EXAMPLE = json.loads((ROOT / "contracts/schemas/lifecycle-event.v1.json").read_text())["examples"][
    1
]


# -- Chromium -------------------------------------------------------------------------------------
def chromium_path() -> str:
    """Debian's chromium, installed by the project's setup script when missing; skip if impossible."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    script = ROOT / "deploy/local/install-chromium.sh"
    done = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=900)
    found = shutil.which("chromium")
    if not found:
        pytest.skip(f"chromium is missing and could not be installed: {done.stderr.strip()[-400:]}")
    return found


async def dump_dom(chromium: str, url: str, profile: Path) -> str:
    """The page's DOM after its scripts have run (virtual time: polls and fetches complete)."""
    proc = await asyncio.create_subprocess_exec(
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=8000",
        "--dump-dom",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode()


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text inside each element with an id."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def having(self, attr: str, **equal: str) -> list[dict[str, str]]:
        return [a for _, a in self.tags if attr in a and all(a.get(k) == v for k, v in equal.items())]


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout_s: float = 45) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last: Any = None
    while loop.time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.3)
    raise AssertionError(f"{what}: not reached within {timeout_s}s (last: {str(last)[:500]})")


# -- spans from this process to the console ------------------------------------------------------
class Switchable(SpanProcessor):
    """Forwards ended spans while on; the process-wide provider cannot drop a processor, so the test
    turns it off (and shuts its exporter down) when it is done."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner
        self.on = True

    def on_end(self, span: ReadableSpan) -> None:
        if self.on:
            self.inner.on_end(span)

    def shutdown(self) -> None:
        self.on = False
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


@contextlib.contextmanager
def spans_exported_to(endpoint: str):  # type: ignore[no-untyped-def]
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    telemetry.configure("onegrid-test", TelemetrySettings(log_json=False))
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    proc = Switchable(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"), schedule_delay_millis=200)
    )
    provider.add_span_processor(proc)
    try:
        yield
    finally:
        proc.shutdown()


# -- the system under test -------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def serving(app: Any, port: int) -> AsyncIterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=5) as http:

            async def ready() -> bool:
                try:
                    return (await http.get(f"{base}/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await until(ready, f"{base}/readyz", 90)
        yield base
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 40)


@contextlib.asynccontextmanager
async def intake_running(kafka: KafkaSettings, n: dict[str, str], ns: str) -> AsyncIterator[None]:
    topics = IntakeTopics(feeds={n["party"]: "party"}, cases=n["cases"], state=n["state"])
    parts = intake_parts(kafka, client_id=f"intake-{ns}", topics=topics, registry_topic=n["registry"])
    await parts.catch_up()
    follow = asyncio.create_task(parts.follow())
    group = f"intake.{ns}"
    producer = make_producer(kafka, client_id=f"{group}-p")
    await producer.start()
    loop = ConsumerLoop(
        consumer=make_consumer(kafka, group_id=group, client_id=f"{group}-c"),
        handler=parts.pipeline.handle,
        producer=producer,
        transactional=partition_producers(kafka, group=group, client_id=f"{group}-t"),
        config=LoopConfig(
            group_id=group,
            topics=(n["party"],),
            service="intake",
            exactly_once=True,
            dlq_topic=n["dlq"],
            quarantine_topic=n["quarantine"],
            commit_interval_s=0.2,
        ),
    )
    running = asyncio.create_task(loop.run())
    try:
        yield
    finally:
        loop.stop()
        await asyncio.wait_for(running, 30)
        await parts.stop()
        await asyncio.wait_for(follow, 30)
        await producer.stop()


async def test_console_shows_live_flow_and_a_case_with_its_trail_and_trace(
    kafka_settings: KafkaSettings, database_url: str, tmp_path: Path
) -> None:
    from grid_registry.domain.seed import seed_records

    chromium = chromium_path()
    ns = uuid.uuid4().hex[:8]
    n = {
        base: f"t.console.{base}.{ns}"
        for base in ("party", "cases", "state", "registry", "dlq", "quarantine", "lifecycle")
    }
    await ensure_topics(
        kafka_settings,
        [
            TopicSpec(n["party"], partitions=2),
            TopicSpec(n["cases"], partitions=3),
            TopicSpec(n["state"], partitions=1, compacted=True),
            TopicSpec(n["registry"], partitions=1, compacted=True),
            TopicSpec(n["dlq"], partitions=1),
            TopicSpec(n["quarantine"], partitions=1),
            TopicSpec(n["lifecycle"], partitions=2),
        ],
    )
    producer = AIOKafkaProducer(linger_ms=20, **kafka_settings.client_kwargs())
    await producer.start()
    try:
        for rec in seed_records():
            await producer.send(
                n["registry"], json.dumps(rec).encode(), key=f"{rec['kind']}:{rec['code']}".encode()
            )
        await producer.flush()

        seed = hashlib.sha256(b"console test key").digest()
        audit_port, console_port = free_port(), free_port()
        audit_app = audit_bootstrap(
            AuditSettings(
                environment="test",
                signing_key=base64.b64encode(seed).decode(),
                database_url=asyncpg_url(database_url),
                db_schema=f"audit_console_{ns}",
                kafka=kafka_settings,
                http_port=audit_port,
                instance_id=ns,
                tap_topic_pattern=rf"^t\.console\.(party|cases|quarantine|lifecycle)\.{ns}$",
                # the test's topics in the catalogue's roles (audit.domain.capture.TopicTrust)
                case_topic_pattern=rf"^t\.console\.(cases|lifecycle)\.{ns}$",
                dead_letter_topic_pattern=rf"^t\.console\.(dlq|quarantine)\.{ns}$",
                opaque_topic_pattern=rf"^t\.console\.party\.{ns}$",
            )
        ).app
        console_app = console_bootstrap(
            ConsoleSettings(
                environment="test",
                database_url=database_url,
                kafka=kafka_settings,
                http_port=console_port,
                instance_id=ns,
                audit_url=f"http://127.0.0.1:{audit_port}",
                dlq_topic=n["dlq"],
                quarantine_topic=n["quarantine"],
                lifecycle_topic=n["lifecycle"],
                cases_topic=n["cases"],
                registry_topic=n["registry"],
                throughput_topic_pattern=rf"t\.console\.\w+\.{ns}",
                lag_group_pattern=rf"intake\.{ns}",
                sample_interval_s=1.0,
            )
        ).app
        async with (
            serving(console_app, console_port) as console,
            serving(audit_app, audit_port),
            httpx.AsyncClient(base_url=console, timeout=10, headers=ADMIN) as http,
        ):
            with spans_exported_to(console):
                async with intake_running(kafka_settings, n, ns):
                    await run_scenario(chromium, console, http, producer, kafka_settings, n, ns, tmp_path)
    finally:
        await producer.stop()


async def run_scenario(
    chromium: str,
    console: str,
    http: httpx.AsyncClient,
    producer: AIOKafkaProducer,
    kafka: KafkaSettings,
    n: dict[str, str],
    ns: str,
    tmp: Path,
) -> None:
    t0 = datetime(2026, 5, 4, 9, 0, tzinfo=BEIJING)
    # The traced gateway sends one diary alone (so intake's batch span is a child of its span).
    sid = f"MQRJ{uuid.uuid4().int % 10**13:013d}"
    case_id = str(case_id_for("party", sid))
    gateway = trace.get_tracer("gateway")
    with gateway.start_as_current_span("gateway publish", kind=trace.SpanKind.PRODUCER) as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
        headers = telemetry.inject([])
        await producer.send_and_wait(
            n["party"], party_diary(sid, code="MQ01", when=t0), key=sid.encode(), headers=headers
        )

    async def case_reported() -> bool:
        got = await read_all(kafka, n["cases"], timeout_s=1)
        return any(r.key == case_id.encode() for r in got)

    await until(case_reported, "intake reported the gateway's case")
    # An unmapped code: quarantined. An escalation of the case, as dispatch would announce it.
    await producer.send_and_wait(n["party"], party_diary(f"Q{sid}", code="MQ77", when=t0), key=b"q")
    escalation = dict(LIFECYCLE_EXAMPLE, case_id=case_id, seq=1)
    await producer.send_and_wait(n["lifecycle"], json.dumps(escalation).encode(), key=case_id.encode())

    async def traffic() -> None:
        """Live flow while the browser looks: a diary every 200 ms, each its own case."""
        i = 0
        while True:
            i += 1
            place = (HOME[0] + (i % 7) * 0.003, HOME[1] + (i % 5) * 0.003)
            when = t0 + timedelta(days=2 + i)
            await producer.send(
                n["party"], party_diary(f"{sid}-{i}", code="MQ04", wgs=place, when=when), key=str(i).encode()
            )
            await asyncio.sleep(0.2)

    flow = asyncio.create_task(traffic())
    try:
        # The console has the spans and the audit trail has the case before the browser looks.
        async def spans() -> Any:
            r = await http.get(f"/api/traces/{trace_id}")
            names = {s["name"] for s in r.json()["spans"]} if r.status_code == 200 else set()
            return names if {"gateway publish", "intake.process"} <= names else None

        await until(spans, "the trace's spans reached the console")

        async def trail() -> Any:
            r = await http.get(f"/api/cases/{case_id}")
            return r.json() if r.status_code == 200 and len(r.json()["trail"]) >= 2 else None

        await until(trail, "the audit trail of the case")

        async def overview_page() -> Any:
            page = Elements(await dump_dom(chromium, f"{console}/#token={ADMIN_TOKEN}", tmp / "profile"))
            flowing = [
                a for a in page.having("data-rate", **{"data-topic": n["cases"]}) if float(a["data-rate"]) > 0
            ]
            q = page.having("data-count", id="quarantine-total")
            alerts = page.having("data-count", id="alert-count")
            ok = (
                flowing
                and q
                and int(q[0]["data-count"]) >= 1
                and alerts
                and int(alerts[0]["data-count"]) >= 1
            )
            return page if ok else None

        page = await until(overview_page, "the overview shows flow, quarantine and the escalation", 60)
        assert page.having("data-reason", **{"data-reason": "crosswalk.unmapped_code"})
        assert page.having("data-group", **{"data-group": f"intake.{ns}"})

        case_page = Elements(
            await dump_dom(chromium, f"{console}/cases/{case_id}#token={ADMIN_TOKEN}", tmp / "profile")
        )
        trail_topics = {a["data-topic"] for a in case_page.having("data-topic", **{"class": "trail-entry"})}
        assert {n["party"], n["cases"], n["lifecycle"]} <= trail_topics, trail_topics
        rows = case_page.having("data-span-id")
        assert {a["data-trace-id"] for a in rows} == {trace_id}
        assert len(rows) >= 3  # the gateway's span, intake's batch span, intake.process
        assert case_page.having("data-state", id="case-state", **{"data-state": "escalated"})
    finally:
        flow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flow

    # Replay the quarantined record: still unmapped, so intake quarantines it again, saying who.
    overview = (await http.get("/api/set-aside/quarantine")).json()
    [first] = overview["latest"]
    refused = await http.post(
        "/api/quarantine/replay", json={"topic": first["topic"], "partition": 0, "offset": 0}
    )
    assert refused.status_code == 422 and "actor" in refused.text
    wrong = await http.post(
        "/api/quarantine/replay", json={"actor": "staff:t", "topic": n["party"], "partition": 0, "offset": 0}
    )
    assert wrong.status_code == 409 and "not on the quarantine topic" in wrong.json()["detail"]
    done = await http.post(
        "/api/quarantine/replay", json={"actor": "staff:hj-0042", "reason": "crosswalk.unmapped_code"}
    )
    assert done.status_code == 200, done.text
    assert done.json()["actor"] == "staff:hj-0042" and done.json()["replayed"][0]["to_topic"] == n["party"]

    async def quarantined_again() -> Any:
        r = (await http.get("/api/set-aside/quarantine")).json()
        return r if r["total"] == 2 else None

    again = (await until(quarantined_again, "the replayed record quarantined again"))["latest"][0]
    assert again["reason"] == "crosswalk.unmapped_code" and again["origin"] != first["origin"]
    records = await read_all(kafka, n["quarantine"])
    assert len(records) == 2 and records[0].value == records[1].value
    assert dict(records[1].headers)["replay_by"] == b"staff:hj-0042"
    assert re.fullmatch(rf"{re.escape(n['quarantine'])}/0/0", dict(records[1].headers)["replay_of"].decode())
