"""The bridges on real sockets, the session's Kafka and PostgreSQL: HJ 212 loggers over TCP (framing
at every byte boundary, several packets per read, replies only once Kafka has the packet, a resend
after a lost reply, limits, slow senders, passwords, per-station metrics), HTTP pushes of the
public-safety and party-building systems and of CAP (202 after the write, idempotent by record id)
and the CAP poller (conditional GETs, each alert fetched once, a failing feed shown)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI, Request, Response
from support.auth import ADMIN, bearer
from support.records import cap_alert, hj212_packet, party_diary, safety_event, truncated_xml, with_bad_crc

from bridges.bootstrap import Bridges, bootstrap
from bridges.settings import CapFeed, Settings
from console.watch import KafkaWatch
from devstack.paths import free_port
from intake.domain.feeds.hj212.packet import build_packet, parse_packet
from onegrid.envelope import header_dict
from onegrid.settings import KafkaSettings
from simulators.departments import QuietServer

from .conftest import read_all

T0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
SAFETY = bearer("legacy_system", subject="legacy:safety-gw")
PARTY = bearer("legacy_system", subject="legacy:party-app")


@dataclass
class Running:
    settings: Settings
    bridges: Bridges
    http: httpx.AsyncClient

    @property
    def port(self) -> int:
        assert self.bridges.hj212.port is not None
        return self.bridges.hj212.port


@asynccontextmanager
async def running_bridges(
    database_url: str, kafka: KafkaSettings, topics: Any, **over: Any
) -> AsyncIterator[Running]:
    uid = uuid.uuid4().hex[:8]
    settings = Settings(
        **{"DATABASE_URL": database_url},  # type: ignore[arg-type]
        db_schema=f"bridges_{uid}",
        service_name=f"bridges-{uid}",
        kafka=kafka,
        hj212_topic=await topics("hj212", partitions=3),
        cap_topic=await topics("cap", partitions=3),
        safety_topic=await topics("safety", partitions=3),
        party_topic=await topics("party", partitions=3),
        hj212_port=0,
        http_port=0,
        **over,
    )
    service = bootstrap(settings)
    app, bridges = service.app, service.bridges
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bridges") as http,
    ):
        yield Running(settings, bridges, http)


class Logger:
    """A data logger (数采仪) on one TCP connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> Logger:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, *parts: bytes) -> None:
        for part in parts:
            self.writer.write(part)
            await self.writer.drain()

    async def reply(self) -> bytes:
        """The next answer packet, or b"" when the bridge closed the connection."""
        try:
            return await asyncio.wait_for(self.reader.readuntil(b"\r\n"), 60)
        except asyncio.IncompleteReadError as e:
            return e.partial

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


def packet(mn: str, n: int, *, reply: bool = True, **kw: Any) -> bytes:
    """Minute data of station `mn`, the n-th minute (a distinct QN per packet); Flag 5 asks for 9014."""
    p = hj212_packet(mn, T0 + timedelta(minutes=n), {"a34004": 30.0}, **kw)
    return build_packet(p[6:-6].decode().replace("Flag=4", "Flag=5")) if reply else p


def replied_to(answer: bytes, sent: bytes) -> bool:
    a, s = parse_packet(answer), parse_packet(sent)
    return (a.cn, a.qn, a.mn) == ("9014", s.qn, s.mn)


# -- HJ 212 over TCP ------------------------------------------------------------------------------


async def test_hj212_framing_at_every_byte_boundary_and_several_packets_per_read(
    database_url, kafka_settings, topics
) -> None:
    async with running_bridges(database_url, kafka_settings, topics) as run:
        logger = await Logger.connect(run.port)
        sent: list[bytes] = []
        first = packet("MN-CUT-01", 0)
        for cut in range(1, len(first)):  # one packet per boundary, each cut there on the wire
            p = packet("MN-CUT-01", cut)
            assert len(p) == len(first)
            await logger.send(p[:cut])
            await asyncio.sleep(0)  # let the first part leave as its own segment
            await logger.send(p[cut:])
            assert replied_to(await logger.reply(), p), cut
            sent.append(p)
        together = [packet("MN-CUT-02", n) for n in range(3)]
        await logger.send(b"".join(together))  # three packets in one write
        for p in together:
            assert replied_to(await logger.reply(), p)
        sent += together
        await logger.close()

        records = await read_all(kafka_settings, run.settings.hj212_topic, expect=len(sent))
        by_station: dict[str, list[bytes]] = {}
        for r in records:
            by_station.setdefault(r.key.decode(), []).append(r.value)
            h = header_dict(r.headers)
            assert h["ce_type"] == f"cn.onegrid.{run.settings.hj212_topic}"
            assert h["ce_source"] == f"/onegrid/bridges/hj212/{r.key.decode()}" and h["ce_bridge"] == "hj212"
            assert h["content-type"].startswith("text/plain")
        # Exactly the bytes sent, once each, in order per station (key = MN).
        assert by_station == {"MN-CUT-01": sent[: len(first) - 1], "MN-CUT-02": together}


async def test_reply_only_after_kafka_has_the_packet_and_a_resend_is_answered_once_stored(
    database_url, kafka_settings, topics
) -> None:
    async with running_bridges(database_url, kafka_settings, topics) as run:
        topic = run.settings.hj212_topic
        every = [TopicPartition(topic, p) for p in range(3)]
        logger = await Logger.connect(run.port)
        probe = AIOKafkaConsumer(enable_auto_commit=False, **kafka_settings.client_kwargs())
        await probe.start()
        try:
            for n in range(3):
                p = packet("MN-ACK-01", n)
                await logger.send(p)
                assert replied_to(await logger.reply(), p)
                # The moment the answer arrives, the broker already holds the packet.
                ends = await probe.end_offsets(every)
                assert sum(ends.values()) == n + 1
        finally:
            await probe.stop()
        stored = await read_all(kafka_settings, topic, expect=3)
        assert [r.value for r in stored] == [packet("MN-ACK-01", n) for n in range(3)]
        # No answer wanted (Flag=4): stored, not answered; a bad CRC: stored for intake's DLQ, not answered.
        quiet, bad = packet("MN-ACK-01", 10, reply=False), with_bad_crc(packet("MN-ACK-01", 11))
        last = packet("MN-ACK-01", 12)
        await logger.send(quiet + bad + last)
        assert replied_to(await logger.reply(), last)
        await logger.close()

        # A lost reply: the logger sent, the connection broke before it read the answer; it resends.
        lost = packet("MN-ACK-02", 0)
        dropped = await Logger.connect(run.port)
        await dropped.send(lost)
        await dropped.close()
        assert lost in [r.value for r in await read_all(kafka_settings, topic, expect=7)]
        again = await Logger.connect(run.port)
        await again.send(lost)
        assert replied_to(await again.reply(), lost)
        await again.close()
        records = await read_all(kafka_settings, topic, expect=7)
        values = [r.value for r in records]
        station = [r.value for r in records if r.key == b"MN-ACK-01"]  # one key: one partition, in order
        assert values.count(lost) == 1 and station[3:6] == [quiet, bad, last]

        status = (await run.http.get("/v1/status", headers=ADMIN)).json()
        station = status["stations"]["MN-ACK-01"]
        assert (station["packets"], station["bad_crc"]) == (5, 1) and station["last_seen"] is not None
        assert status["events"]["hj212.resend_answered"] == 1
        metrics = (await run.http.get("/metrics")).text
        lines = metrics.splitlines()
        assert any(ln.startswith("bridges_hj212_packets_total{") and 'mn="MN-ACK-01"' in ln for ln in lines)
        assert any(
            ln.startswith("bridges_hj212_bad_packets_total{")
            and 'mn="MN-ACK-01"' in ln
            and "crc_mismatch" in ln
            for ln in lines
        )


async def test_limits_slow_senders_oversize_and_passwords(
    database_url, kafka_settings, topics, tmp_path: Path
) -> None:
    passwords = tmp_path / "pw.json"
    passwords.write_text(json.dumps({"MN-PW-OK": "123456", "MN-PW-BAD": "not-what-it-sends"}))
    async with running_bridges(
        database_url,
        kafka_settings,
        topics,
        hj212_max_connections_per_address=2,
        hj212_packet_timeout_s=1.0,
        hj212_crlf_grace_s=0.2,
        hj212_idle_timeout_s=2.0,
        hj212_max_packet_bytes=400,
        hj212_passwords_file=passwords,
    ) as run:
        a, b = await Logger.connect(run.port), await Logger.connect(run.port)
        for logger in (a, b):  # both admitted: each is answered
            p = packet("MN-PW-OK", 0)
            await logger.send(p)
            assert replied_to(await logger.reply(), p)
        third = await Logger.connect(run.port)
        assert await third.reply() == b""  # over the per-address limit: closed at once
        await a.close()
        await b.close()

        slow = await Logger.connect(run.port)
        await slow.send(packet("MN-PW-OK", 1)[:30])  # begins a packet and never finishes it
        assert await slow.reply() == b""
        big = await Logger.connect(run.port)
        await big.send(b"##9999QN=" + b"1" * 500)
        assert await big.reply() == b""
        idle = await Logger.connect(run.port)
        assert await idle.reply() == b""  # says nothing at all: closed after the idle timeout

        c = await Logger.connect(run.port)
        wrong, right = packet("MN-PW-BAD", 0), packet("MN-PW-OK", 2)
        await c.send(wrong, right)
        assert replied_to(await c.reply(), right)  # the wrong password got no answer, the next did
        await c.close()
        values = [r.value for r in await read_all(kafka_settings, run.settings.hj212_topic, expect=3)]
        assert wrong not in values and values.count(right) == 1
        events = (await run.http.get("/v1/status", headers=ADMIN)).json()["events"]
        assert events["hj212.refused_address_limit"] == 1
        assert events["hj212.closed_slow_packet"] == 1 and events["hj212.closed_too_large"] == 1
        assert events["hj212.closed_idle"] >= 1
        stations = (await run.http.get("/v1/status", headers=ADMIN)).json()["stations"]
        assert stations["MN-PW-BAD"]["bad"] == {"hj212.password_mismatch": 1}


# -- HTTP pushes ----------------------------------------------------------------------------------


async def test_pushes_answer_202_after_the_write_and_once_per_record_id(
    database_url, kafka_settings, topics
) -> None:
    async with running_bridges(database_url, kafka_settings, topics) as run:
        safety = safety_event("PA20261130190500000001")
        first = await run.http.post("/v1/push/safety", content=safety, headers=SAFETY)
        assert first.status_code == 202, first.text
        body = first.json()
        assert (body["status"], body["record_id"]) == ("accepted", "PA20261130190500000001")
        again = await run.http.post("/v1/push/safety", content=safety, headers=SAFETY)
        assert again.status_code == 202 and again.json()["status"] == "duplicate"
        assert again.json()["offset"] == body["offset"]

        diary = party_diary("MQRJ-0001")
        assert (await run.http.post("/v1/push/party", content=diary, headers=PARTY)).status_code == 202
        assert (await run.http.post("/v1/push/party", content=diary, headers=PARTY)).json()[
            "status"
        ] == "duplicate"
        alert = cap_alert("YZ-ALERT-0001")
        cap = await run.http.post("/v1/push/cap", content=alert, headers=SAFETY)
        assert cap.status_code == 202

        [s] = await read_all(kafka_settings, run.settings.safety_topic, expect=1)
        assert (s.value, s.key, s.offset) == (safety, b"PA20261130190500000001", body["offset"])
        h = header_dict(s.headers)
        assert h["ce_source"] == "/onegrid/bridges/safety-push/legacy:safety-gw"
        assert h["content-type"] == "application/xml; charset=gbk" and h["ce_bridge"] == "safety-push"
        [p] = await read_all(kafka_settings, run.settings.party_topic, expect=1)
        assert (p.value, p.key) == (diary, b"MQRJ-0001")
        [c] = await read_all(kafka_settings, run.settings.cap_topic, expect=1)
        assert (c.value, c.key) == (alert, b"yjj@yangzhou.gov.cn")

        # The console's throughput names the bridge each feed came through.
        pushed = {run.settings.safety_topic, run.settings.party_topic, run.settings.cap_topic}
        watch = KafkaWatch(
            kafka_settings,
            topic_pattern="|".join(re.escape(t) for t in pushed),
            group_pattern="none",
            interval_s=1,
            window_s=10,
            via_pattern=re.compile(r"t\..+"),
        )
        try:
            await watch.sample()
        finally:
            await watch._close()
        assert watch.via == {
            run.settings.safety_topic: "bridge safety-push",
            run.settings.party_topic: "bridge party-push",
            run.settings.cap_topic: "bridge cap-push",
        }

        # No record id: a clear refusal, and the original kept for intake's dead letters (a retry is
        # a duplicate). No credentials or the wrong role: refused, nothing written.
        nameless = b'{"sjbt": "x"}'
        refused = await run.http.post("/v1/push/party", content=nameless, headers=PARTY)
        assert refused.status_code == 422 and refused.json()["error"] == "party.missing_field"
        again = await run.http.post("/v1/push/party", content=nameless, headers=PARTY)
        assert again.status_code == 422 and again.json()["kept"] == refused.json()["kept"]
        broken = await run.http.post("/v1/push/safety", content=truncated_xml(safety), headers=SAFETY)
        assert broken.status_code == 422 and broken.json()["error"] == "safety.xml_malformed"
        assert (await run.http.post("/v1/push/party", content=diary)).status_code == 401
        grid = bearer("grid_worker", scope=["321003009001003"])
        assert (await run.http.post("/v1/push/party", content=diary, headers=grid)).status_code == 403
        party = {r.value: r.key for r in await read_all(kafka_settings, run.settings.party_topic, expect=2)}
        assert party.keys() == {diary, nameless} and party[nameless].startswith(b"sha256:")
        kept = await read_all(kafka_settings, run.settings.safety_topic, expect=2)
        assert sorted(r.value for r in kept) == sorted([safety, truncated_xml(safety)])


# -- CAP poller -----------------------------------------------------------------------------------


class AlertHub:
    """An alert hub: an Atom or RSS index with ETag/Last-Modified, and the alerts' documents."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.alerts: dict[str, bytes] = {}
        self.index_gets: list[int] = []
        self.doc_gets: list[str] = []
        self.failing = False
        self.app = FastAPI()
        self.app.add_api_route("/index", self.index, methods=["GET"])
        self.app.add_api_route("/alerts/{name}", self.alert, methods=["GET"])

    def etag(self) -> str:
        return f'"{len(self.alerts)}"'

    async def index(self, request: Request) -> Response:
        if self.failing:
            self.index_gets.append(500)
            return Response("hub down", status_code=500)
        if request.headers.get("if-none-match") == self.etag():
            self.index_gets.append(304)
            return Response(status_code=304)
        self.index_gets.append(200)
        if self.kind == "atom":
            items = "".join(
                f"<entry><id>urn:alert:{n}</id><title>{n}</title><updated>2026-11-30T11:00:00Z</updated>"
                f'<link rel="alternate" type="application/cap+xml" href="/alerts/{n}"/></entry>'
                for n in self.alerts
            )
            body = (
                f'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><id>hub</id>{items}</feed>'
            )
        else:
            items = "".join(
                f"<item><guid>urn:alert:{n}</guid><link>/alerts/{n}</link></item>" for n in self.alerts
            )
            body = (
                f'<?xml version="1.0"?><rss version="2.0"><channel><title>hub</title>{items}</channel></rss>'
            )
        return Response(body, media_type="application/atom+xml", headers={"ETag": self.etag()})

    async def alert(self, name: str) -> Response:
        self.doc_gets.append(name)
        return Response(self.alerts[name], media_type="application/cap+xml")


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    server = QuietServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    for _ in range(600):
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_cap_poller_conditional_gets_each_alert_once(database_url, kafka_settings, topics) -> None:
    for kind in ("atom", "rss"):
        hub = AlertHub(kind)
        hub.alerts = {
            "a1": cap_alert(f"{kind}-A1"),
            "a2": cap_alert(f"{kind}-A2", msg_type="Update", refs=(f"{kind}-A1",)),
        }
        async with serving(hub.app) as base, running_bridges(database_url, kafka_settings, topics) as run:
            feed = CapFeed(name=f"hub-{kind}", url=f"{base}/index", interval_s=60)
            poller = run.bridges.cap
            async with httpx.AsyncClient() as client:
                assert await poller.poll(client, feed) == 2
                assert await poller.poll(client, feed) == 0  # 304: the index did not change
                hub.alerts["a3"] = cap_alert(f"{kind}-A3", msg_type="Cancel", refs=(f"{kind}-A1",))
                assert await poller.poll(client, feed) == 1
            assert hub.index_gets == [200, 304, 200]
            assert hub.doc_gets == ["a1", "a2", "a3"]  # every document fetched once
            records = await read_all(kafka_settings, run.settings.cap_topic, expect=3)
            assert [r.value for r in records] == list(hub.alerts.values())
            assert {r.key for r in records} == {b"yjj@yangzhou.gov.cn"}
            assert header_dict(records[0].headers)["ce_source"] == f"/onegrid/bridges/cap-poll/hub-{kind}"


async def test_a_failing_feed_backs_off_and_shows(database_url, kafka_settings, topics) -> None:
    hub = AlertHub("atom")
    hub.failing = True
    async with serving(hub.app) as base:
        feeds = [CapFeed(name="hub-down", url=f"{base}/index", interval_s=0.05)]
        async with running_bridges(database_url, kafka_settings, topics, cap_feeds=feeds) as run:
            for _ in range(400):
                state = run.bridges.stats.feeds.get("hub-down")
                if state is not None and state.failures >= 3:
                    break
                await asyncio.sleep(0.05)
            status = (await run.http.get("/v1/status", headers=ADMIN)).json()["cap_feeds"]["hub-down"]
            assert status["state"] == "failing" and "500" in status["error"]
            assert status["next_poll_in_s"] > 0.05  # backing off, not hammering the hub
            assert "bridges_cap_feed_failing" in (await run.http.get("/metrics")).text
