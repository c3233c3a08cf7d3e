"""HJ 212 packets out of a TCP byte stream.

A data logger writes packets back to back; TCP cuts them anywhere. `Framer.feed` takes whatever a
read returned and gives back the complete frames, keeping the rest for the next read, so a packet
split at any byte boundary, or several packets in one read, frame the same.

A packet is `##` + 4-digit length L + segment + 4 hex CRC + CRLF (contracts/legacy/hj212.md). The
framer accepts intake's tolerances: a segment of L±1 bytes (only when the CRC verifies over it), a
missing CRLF (the next packet's `##` follows the CRC, or the connection ends, or nothing more
arrives: `unterminated`). It never changes a byte: a frame is the exact slice of the stream.

Frames that start with `##` but cannot be framed as a packet (a length that is not digits, no CRLF
where one must be) are cut at the next CRLF and given back as `malformed`, so they are kept (intake
dead-letters them with the reason); bytes before a `##` are `noise` (line garbage, counted, not
records). A frame that would exceed `max_bytes` is `too_large`: the connection is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from intake.domain.feeds.hj212.packet import crc16_hj212

Kind = Literal["packet", "malformed", "noise", "too_large"]
HEAD = 6  # "##" + 4 length digits
TAIL = 4  # CRC hex digits
CRLF = b"\r\n"


@dataclass(frozen=True, slots=True)
class Frame:
    kind: Kind
    data: bytes


def _crc_ok(segment: bytes, crc: bytes) -> bool:
    try:
        return int(crc, 16) == crc16_hj212(segment)
    except ValueError:
        return False


@dataclass
class Framer:
    max_bytes: int = 16384
    _buf: bytearray = field(default_factory=bytearray)

    @property
    def pending(self) -> int:
        """Bytes held for a frame not complete yet (a slow sender is timed on this)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out: list[Frame] = []
        while self._buf:
            frame = self._next()
            if frame is None:
                break
            out.append(frame)
        return out

    def unterminated(self) -> Frame | None:
        """The held bytes as a packet whose CRLF never came (a gateway that strips it): only when they
        are exactly a packet whose CRC verifies. Call when the sender has gone quiet or closed."""
        buf = bytes(self._buf)
        if len(buf) < HEAD + TAIL or not buf.startswith(b"##") or not buf[2:6].isdigit():
            return None
        declared = int(buf[2:6])
        for length in (declared, declared - 1, declared + 1):
            if len(buf) == HEAD + length + TAIL and _crc_ok(buf[HEAD : HEAD + length], buf[-TAIL:]):
                self._buf.clear()
                return Frame("packet", buf)
        return None

    def quiet(self) -> Frame | None:
        """What the held bytes are when the sender has gone quiet: a packet without its CRLF, or a
        malformed frame up to a CRLF it holds; None to keep waiting (the slow-sender limit ends it)."""
        packet = self.unterminated()
        if packet is not None:
            return packet
        if self._buf.startswith(b"##") and self._buf.find(CRLF, 2) != -1:
            return self._malformed()
        return None

    def _cut(self, n: int, kind: Kind) -> Frame:
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return Frame(kind, data)

    def _next(self) -> Frame | None:
        buf = self._buf
        start = buf.find(b"##")
        if start == -1:
            # Keep a trailing '#': it may be the first half of the next packet's '##'.
            keep = 1 if buf.endswith(b"#") else 0
            return self._cut(len(buf) - keep, "noise") if len(buf) > keep else None
        if start > 0:
            return self._cut(start, "noise")
        if len(buf) < HEAD:
            return None
        if not bytes(buf[2:6]).isdigit():
            return self._malformed()
        declared = int(buf[2:6])
        if HEAD + declared - 1 + TAIL + 2 > self.max_bytes:
            return self._cut(len(buf), "too_large")
        # The declared length first; then one byte less or more, only with a verifying CRC.
        for length, needs_crc in ((declared, False), (declared - 1, True), (declared + 1, True)):
            end = HEAD + length + TAIL
            if length < 0 or len(buf) < end + 2:
                continue
            if buf[end : end + 2] == CRLF:
                if needs_crc and not _crc_ok(bytes(buf[HEAD : HEAD + length]), bytes(buf[end - TAIL : end])):
                    continue
                return self._cut(end + 2, "packet")
            if buf[end : end + 2] == b"##" and _crc_ok(
                bytes(buf[HEAD : HEAD + length]), bytes(buf[end - TAIL : end])
            ):
                return self._cut(end, "packet")  # CRLF stripped, the next packet follows at once
        if len(buf) < HEAD + declared + 1 + TAIL + 2:
            return None  # wait: the longest candidate is not complete yet
        return self._malformed()

    def _malformed(self) -> Frame | None:
        """Cut at the next CRLF (or before the next '##'); wait for one within `max_bytes`."""
        buf = self._buf
        crlf = buf.find(CRLF, 2)
        nxt = buf.find(b"##", 2)
        ends = [e for e in (crlf + 2 if crlf != -1 else -1, nxt) if e != -1]
        if ends:
            return self._cut(min(ends), "malformed")
        if len(buf) > self.max_bytes:
            return self._cut(len(buf), "too_large")
        return None
