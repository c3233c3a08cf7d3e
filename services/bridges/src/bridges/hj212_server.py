"""The HJ 212 bridge: data loggers (数采仪) connect over TCP and send packets; each packet's exact
bytes go to `legacy.env.hj212.v1` keyed by MN; a packet whose Flag asks for an answer is answered on
the same connection only after Kafka acknowledged it (domain/replies.py).

One connection is served in order: the packets of a read are sent back to back (the producer
batches them) and answered in the same order as their acknowledgements arrive. When Kafka does not
acknowledge in time nothing more is answered and the connection is closed: the logger reconnects
and resends what was not answered, so nothing is lost.

Protection: a global and a per-address connection limit (over it, the connection is closed at once),
an idle timeout, a deadline for a packet once begun (slow-loris), a maximum packet size, and where
configured a per-MN password. Packets that fail their CRC or framing are still written (intake
dead-letters them with the reason, the original kept) but never answered; a wrong password is not
written (the sender is not the station) and is counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import Counter, OrderedDict
from collections.abc import Mapping
from typing import Any

from bridges.domain.framing import Frame, Framer
from bridges.domain.records import hj212_mn, legacy_headers
from bridges.domain.replies import replies_for
from bridges.settings import Settings
from bridges.sink import NotAcknowledged, Sink
from bridges.stats import Stats
from intake.domain.errors import Rejected
from intake.domain.feeds.hj212.packet import Hj212Packet, parse_packet

log = logging.getLogger(__name__)
BRIDGE = "hj212"


class _Close(Exception):
    """End this connection (the reason is counted and logged)."""


class Hj212Bridge:
    def __init__(self, settings: Settings, sink: Sink, stats: Stats, *, passwords: Mapping[str, str]) -> None:
        self.s = settings
        self.sink = sink
        self.stats = stats
        self.passwords = dict(passwords)
        self.port: int | None = None
        self._server: asyncio.Server | None = None
        self._per_address: Counter[str] = Counter()
        self._open = 0
        self._acked: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        host = self.s.hj212_host or self.s.http_host
        self._server = await asyncio.start_server(
            self._serve, host, self.s.hj212_port, limit=self.s.hj212_max_packet_bytes
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("HJ 212 bridge listening on %s:%s", host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    @property
    def connections(self) -> int:
        return self._open

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if peer else "?"
        where = f"{address}:{peer[1]}" if peer else "?"
        if self._open >= self.s.hj212_max_connections:
            self.stats.event(BRIDGE, "refused_global_limit")
            await _close(writer)
            return
        if self._per_address[address] >= self.s.hj212_max_connections_per_address:
            self.stats.event(BRIDGE, "refused_address_limit")
            await _close(writer)
            return
        self._open += 1
        self._per_address[address] += 1
        self.stats.event(BRIDGE, "connections")
        try:
            await self._connection(reader, writer, where)
        except _Close as why:
            self.stats.event(BRIDGE, f"closed_{why}")
            log.info("HJ 212 connection %s closed: %s", where, why)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.stats.event(BRIDGE, "closed_by_peer")
        except asyncio.CancelledError:
            # The bridge is stopping (stop() cancels the connections): end quietly, the stream
            # protocol would otherwise log the cancellation as an error.
            self.stats.event(BRIDGE, "closed_at_stop")
        finally:
            self._open -= 1
            self._per_address[address] -= 1
            if self._per_address[address] <= 0:
                del self._per_address[address]
            await _close(writer)
            if task is not None:
                self._tasks.discard(task)

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        loop = asyncio.get_running_loop()
        framer = Framer(max_bytes=self.s.hj212_max_packet_bytes)
        begun: float | None = None  # when the packet held in the framer began (slow-loris clock)
        while True:
            if framer.pending:
                begun = begun if begun is not None else loop.time()
                left = begun + self.s.hj212_packet_timeout_s - loop.time()
                if left <= 0:
                    raise _Close("slow_packet")
                wait = min(left, self.s.hj212_crlf_grace_s)
            else:
                begun, wait = None, self.s.hj212_idle_timeout_s
            try:
                data = await asyncio.wait_for(reader.read(65536), wait)
            except TimeoutError:
                if not framer.pending:
                    raise _Close("idle") from None
                quiet = framer.quiet()  # a packet without CRLF, or a malformed one, then quiet
                if quiet is not None:
                    await self._frames([quiet], writer, peer)
                    begun = None
                continue
            if not data:
                quiet = framer.quiet()
                if quiet is not None:
                    await self._frames([quiet], writer, peer)
                if framer.pending:
                    self.stats.event(BRIDGE, "incomplete_at_close")
                return
            frames = framer.feed(data)
            if frames:
                begun = None
                await self._frames(frames, writer, peer)

    async def _frames(self, frames: list[Frame], writer: asyncio.StreamWriter, peer: str) -> None:
        pending: list[tuple[asyncio.Future[Any] | None, list[bytes], tuple[str, str] | None]] = []
        timeout = self.s.hj212_ack_timeout_s
        for f in frames:
            if f.kind == "noise":
                self.stats.event(BRIDGE, "noise_bytes", len(f.data))
                continue
            if f.kind == "too_large":
                self.stats.bad_packet(hj212_mn(f.data), "hj212.too_large")
                raise _Close("too_large")
            mn, packet, reason = self._judge(f)
            if reason == "hj212.password_mismatch":
                self.stats.bad_packet(mn, reason)
                log.warning("HJ 212 packet from %s for MN %s with a wrong password: not taken in", peer, mn)
                continue
            if packet is not None:
                self.stats.packet(packet.mn)
            else:
                self.stats.bad_packet(mn, reason or "hj212.malformed")
            replies = replies_for(packet) if packet is not None else []
            seen = (packet.mn, hashlib.sha256(f.data).hexdigest()) if packet is not None else None
            if seen is not None and seen in self._acked:
                self.stats.event(BRIDGE, "resend_answered")
                pending.append((None, replies, None))  # stored before; the reply was what got lost
                continue
            headers = legacy_headers(
                feed="hj212",
                topic=self.s.hj212_topic,
                bridge=BRIDGE,
                sender=mn or "unknown",
                raw=f.data,
                peer=peer,
            )
            try:
                handle = await self.sink.send(
                    self.s.hj212_topic, f.data, mn or peer, headers, timeout_s=timeout
                )
            except NotAcknowledged as e:
                await self._answer(pending, writer)
                self.stats.event(BRIDGE, "produce_failed")
                raise _Close(f"kafka_unavailable ({e})") from e
            pending.append((handle, replies, seen))
        await self._answer(pending, writer)

    async def _answer(
        self,
        pending: list[tuple[asyncio.Future[Any] | None, list[bytes], tuple[str, str] | None]],
        writer: asyncio.StreamWriter,
    ) -> None:
        """Answer in order, each packet only once Kafka acknowledged it; stop at the first failure."""
        for handle, replies, seen in pending:
            if handle is not None:
                try:
                    await self.sink.acked(handle, timeout_s=self.s.hj212_ack_timeout_s)
                except NotAcknowledged as e:
                    self.stats.event(BRIDGE, "produce_failed")
                    raise _Close(f"kafka_unavailable ({e})") from e
                self.stats.produced(BRIDGE)
                if seen is not None:
                    self._remember(seen)
            if replies:
                writer.write(b"".join(replies))
                await writer.drain()
                self.stats.event(BRIDGE, "replies", len(replies))
        pending.clear()

    def _remember(self, seen: tuple[str, str]) -> None:
        if self.s.hj212_resend_memory <= 0:
            return
        self._acked[seen] = None
        while len(self._acked) > self.s.hj212_resend_memory:
            self._acked.popitem(last=False)

    def _judge(self, f: Frame) -> tuple[str | None, Hj212Packet | None, str | None]:
        """(MN, the parsed packet or None, the reason it is bad or None)."""
        mn = hj212_mn(f.data)
        try:
            packet = parse_packet(f.data, max_bytes=self.s.hj212_max_packet_bytes)
        except Rejected as e:
            return mn, None, e.reason
        expected = self.passwords.get(packet.mn)
        if expected is not None and packet.pw != expected:
            return packet.mn, None, "hj212.password_mismatch"
        return packet.mn, packet, None


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
