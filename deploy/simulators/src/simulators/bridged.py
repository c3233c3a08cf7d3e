"""The legacy networks as they reach OneGrid for real: through the bridges (services/bridges).

- `StationLinks`: each monitoring station's data logger holds a TCP connection to the HJ 212 bridge,
  asks for an answer (Flag bit 0) and resends what was not answered (a lost answer, a closed
  connection), in order, as loggers do;
- `AlertHub`: the emergency platform's alert hub, an Atom index of recent CAP alerts with ETag and
  Last-Modified plus the alerts' documents; the bridge polls it;
- `Pusher`: the public-safety system and the party-building app POST their native bodies to the
  bridges with a `legacy_system` credential (CAP too, for the scripted demo).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from email.utils import formatdate
from xml.sax.saxutils import escape

import httpx
from fastapi import FastAPI, Request, Response

from intake.domain.errors import Rejected
from intake.domain.feeds.hj212.packet import FLAG_REPLY_WANTED, build_packet, parse_packet
from onegrid.auth import mint
from simulators.running import Tally

log = logging.getLogger(__name__)


def legacy_token(subject: str) -> str | None:
    """A `legacy_system` token for `subject`, signed with the local stack's secret (None: unknown)."""
    secret = os.environ.get("ONEGRID_AUTH_HS256_SECRET")
    if not secret:
        try:
            from onegrid.auth.settings import development_secret

            secret = development_secret()
        except Exception:
            return None
    return mint(secret.encode(), role="legacy_system", subject=subject, ttl_s=7 * 24 * 3600)


def wants_answer(packet: bytes) -> bool:
    try:
        return bool((parse_packet(packet).flag or 0) & FLAG_REPLY_WANTED)
    except Rejected:
        return False  # a faulty packet (bad CRC, ...): the bridge stores it and never answers it


def asking_for_answer(packet: bytes) -> bytes:
    """The packet with the Flag's reply bit set, framed again (the logger asks for 9014); a faulty
    packet is sent as it is."""
    try:
        p = parse_packet(packet)
    except Rejected:
        return packet
    flag = p.flag or 0
    if flag & FLAG_REPLY_WANTED:
        return packet
    segment = packet[6:-6].decode("ascii").replace(f";Flag={flag};", f";Flag={flag | FLAG_REPLY_WANTED};", 1)
    return build_packet(segment)


class StationLink:
    """One logger: a queue of packets sent in order over one connection, each until answered."""

    def __init__(
        self, host: str, port: int, tally: Tally, *, answer_timeout_s: float = 15.0, backlog: int = 1000
    ) -> None:
        self.host, self.port, self.tally = host, port, tally
        self.timeout = answer_timeout_s
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=backlog)
        self.task = asyncio.create_task(self._run())
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    def put(self, packet: bytes) -> None:
        try:
            self.queue.put_nowait(packet)
        except asyncio.QueueFull:
            self.tally["hj212 dropped (logger backlog full)"] += 1

    async def _run(self) -> None:
        while True:
            packet = await self.queue.get()
            wants = wants_answer(packet)
            attempt = 0
            while True:
                attempt += 1
                try:
                    await self._send(packet, wants)
                    self.tally["hj212 answered" if wants else "hj212 sent"] += 1
                    break
                except (OSError, TimeoutError, asyncio.IncompleteReadError) as e:
                    await self._drop()
                    self.tally["hj212 resent"] += 1
                    log.info("HJ 212 logger: %r; resending (attempt %d)", e, attempt)
                    await asyncio.sleep(min(30.0, 0.5 * 2 ** min(attempt, 6)))
            self.queue.task_done()

    async def _send(self, packet: bytes, wants: bool) -> None:
        if self._conn is None:
            self._conn = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout)
        reader, writer = self._conn
        writer.write(packet)
        await writer.drain()
        if wants:
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n"), self.timeout)
            if parse_packet(answer).cn not in ("9014", "9011", "9012"):
                raise OSError(f"unexpected answer {answer[:60]!r}")

    async def _drop(self) -> None:
        if self._conn is not None:
            _, writer = self._conn
            self._conn = None
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self._drop()


class StationLinks:
    def __init__(self, address: str, tally: Tally) -> None:
        host, _, port = address.rpartition(":")
        self.host, self.port, self.tally = host or "127.0.0.1", int(port), tally
        self.links: dict[str, StationLink] = {}

    def send(self, mn: str, packet: bytes) -> None:
        link = self.links.get(mn)
        if link is None:
            link = self.links[mn] = StationLink(self.host, self.port, self.tally)
        link.put(asking_for_answer(packet))

    async def flush(self, timeout_s: float = 10.0) -> None:
        """Wait (bounded) until every logger's queue is empty."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(link.queue.join() for link in self.links.values())), timeout_s
            )

    async def close(self) -> None:
        await asyncio.gather(*(link.close() for link in self.links.values()))


class AlertHub:
    """The alert hub's Atom index (newest first, the last `keep` alerts) and documents."""

    def __init__(self, *, keep: int = 200, clock: Callable[[], float] | None = None) -> None:
        import time

        self.clock = clock or time.time
        self.keep = keep
        self.alerts: OrderedDict[str, bytes] = OrderedDict()
        self.version = 0
        self.changed = self.clock()
        self.app = FastAPI(title="simulated alert hub (CAP index feed)")
        self.app.add_api_route("/cap/index.atom", self.index, methods=["GET"])
        self.app.add_api_route("/cap/alerts/{n}.xml", self.alert, methods=["GET"])

    def add(self, document: bytes) -> None:
        self.version += 1
        self.alerts[str(self.version)] = document
        while len(self.alerts) > self.keep:
            self.alerts.popitem(last=False)
        self.changed = self.clock()

    async def index(self, request: Request) -> Response:
        etag = f'"v{self.version}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        updated = formatdate(self.changed, usegmt=True)
        entries = "".join(
            f"<entry><id>urn:onegrid:sim:alert:{n}</id><title>alert {n}</title>"
            f'<link rel="alternate" type="application/cap+xml" href="{escape(f"/cap/alerts/{n}.xml")}"/></entry>'
            for n in reversed(self.alerts)
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<id>urn:onegrid:sim:alert-hub</id><title>simulated alert hub</title>{entries}</feed>"
        )
        return Response(
            body, media_type="application/atom+xml", headers={"ETag": etag, "Last-Modified": updated}
        )

    async def alert(self, n: str) -> Response:
        doc = self.alerts.get(n)
        if doc is None:
            return Response(status_code=404)
        return Response(doc, media_type="application/cap+xml")


class Pusher:
    """POSTs to the bridges' push endpoints; counts the answers."""

    def __init__(
        self, bridges_url: str, tally: Tally, *, fallback_headers: dict[str, str] | None = None
    ) -> None:
        self.url = bridges_url.rstrip("/")
        self.tally = tally
        self.http = httpx.AsyncClient(timeout=30.0)
        self.fallback = fallback_headers or {}
        self._headers: dict[str, dict[str, str]] = {}

    def headers(self, feed: str) -> dict[str, str]:
        if feed not in self._headers:
            token = legacy_token(f"legacy:simulated-{feed}")
            self._headers[feed] = {"Authorization": f"Bearer {token}"} if token else dict(self.fallback)
        return self._headers[feed]

    async def push(self, feed: str, value: bytes) -> int | None:
        """POST one record; retried while the bridge answers 503 or cannot be reached (a few times)."""
        for attempt in range(5):
            try:
                resp = await self.http.post(
                    f"{self.url}/v1/push/{feed}", content=value, headers=self.headers(feed)
                )
            except httpx.HTTPError as e:
                self.tally[f"{feed} bridge unreachable"] += 1
                log.warning("bridges: %s", e)
            else:
                self.tally[f"{feed} {resp.status_code}"] += 1
                if resp.status_code != 503:
                    return resp.status_code
            await asyncio.sleep(min(10.0, 0.5 * 2**attempt))
        return None

    async def close(self) -> None:
        await self.http.aclose()
