"""HJ 212 framing of a TCP stream: every cut, several packets per read, intake's tolerances, bytes
never changed; and the replies a logger waits for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from support.records import hj212_packet, with_bad_crc

from bridges.domain.framing import Framer
from bridges.domain.records import hj212_mn
from bridges.domain.replies import replies_for
from intake.domain.feeds.hj212.packet import build_packet, parse_packet

T = datetime(2026, 11, 30, 11, 0, tzinfo=UTC)
A = hj212_packet("MN-A-0001", T, {"a34004": 41.0})
B = hj212_packet("MN-B-0002", T, {"a34002": 77.5, "a21026": 12.0})
C = hj212_packet("MN-C-0003", T, {"w01018": 30.0}, st="32")


def frames_of(stream: bytes, cuts: list[int]) -> list[tuple[str, bytes]]:
    framer, out, last = Framer(), [], 0
    for cut in [*cuts, len(stream)]:
        out += [(f.kind, f.data) for f in framer.feed(stream[last:cut])]
        last = cut
    q = framer.quiet()
    if q is not None:
        out.append((q.kind, q.data))
    return out


def test_a_packet_cut_at_every_byte_boundary_frames_exactly() -> None:
    stream = A + B
    for cut in range(1, len(stream)):
        assert frames_of(stream, [cut]) == [("packet", A), ("packet", B)], cut


def test_byte_by_byte_and_three_packets_in_one_read() -> None:
    stream = A + B + C
    assert frames_of(stream, list(range(1, len(stream)))) == [("packet", A), ("packet", B), ("packet", C)]
    assert frames_of(stream, []) == [("packet", A), ("packet", B), ("packet", C)]


def test_intakes_tolerances_frame_and_keep_the_bytes() -> None:
    no_crlf = A[:-2]
    lower = A[:-6] + A[-6:-2].lower() + b"\r\n"
    seg = A[6:-6]
    longer = b"##%04d" % (len(seg) + 1) + A[6:]  # declared one more than sent, CRC verifies
    shorter = b"##%04d" % (len(seg) - 1) + A[6:]
    for variant in (lower, longer, shorter):
        assert frames_of(variant + B, [len(variant) - 1]) == [("packet", variant), ("packet", B)]
        parse_packet(variant)  # and intake accepts it
    # Without CRLF: framed by the next packet's '##', or when the sender goes quiet.
    assert frames_of(no_crlf + B, [5]) == [("packet", no_crlf), ("packet", B)]
    assert frames_of(no_crlf, [3]) == [("packet", no_crlf)]


def test_bad_packets_are_framed_and_kept_noise_is_set_apart() -> None:
    bad = with_bad_crc(A)
    garbage = b"##12x4 not a length\r\n"
    stream = b"\x00\xff noise " + bad + garbage + B
    out = frames_of(stream, [3, 30, 200])
    noise = b"".join(d for k, d in out if k == "noise")
    assert noise == b"\x00\xff noise "  # set apart in pieces as it arrives, never in a record
    assert [f for f in out if f[0] != "noise"] == [("packet", bad), ("malformed", garbage), ("packet", B)]
    assert hj212_mn(bad) == "MN-A-0001"


def test_a_frame_longer_than_the_limit_is_too_large() -> None:
    big = build_packet("QN=20261130190000000;ST=22;CN=2051;PW=1;MN=X;Flag=4;CP=&&" + "a" * 300 + "=1&&")
    assert [f.kind for f in Framer(max_bytes=200).feed(big)] == ["too_large"]
    endless = Framer(max_bytes=200)
    assert [f.kind for f in endless.feed(b"##12x4" + b"y" * 300)] == ["too_large"]


def test_a_partial_packet_is_held_until_complete() -> None:
    framer = Framer()
    assert framer.feed(A[:20]) == [] and framer.pending == 20
    assert framer.quiet() is None  # not a packet yet, no CRLF: keep waiting


def test_replies_9014_for_data_and_9011_9012_for_requests() -> None:
    data = hj212_packet("MN-A-0001", T, {"a34004": 41.0}).replace(b"Flag=4", b"Flag=5")
    data = build_packet(data[6:-6].decode())
    [ack] = replies_for(parse_packet(data))
    p = parse_packet(ack)
    assert (p.cn, p.st, p.mn, p.qn, p.reply_wanted) == ("9014", "91", "MN-A-0001", "20261130190000000", False)
    request = build_packet("QN=20261130190000001;ST=22;CN=1013;PW=123456;MN=MN-A-0001;Flag=5;CP=&&&&")
    first, second = (parse_packet(r) for r in replies_for(parse_packet(request)))
    assert (first.cn, first.cp_params["QnRtn"]) == ("9011", "1")
    assert (second.cn, second.cp_params["ExeRtn"]) == ("9012", "1")
    assert replies_for(parse_packet(A)) == []  # Flag=4: no answer wanted


@pytest.mark.parametrize("cn", ["9014", "9011"])
def test_answers_are_never_answered(cn: str) -> None:
    p = build_packet(f"QN=20261130190000001;ST=91;CN={cn};PW=1;MN=M;Flag=5;CP=&&&&")
    assert replies_for(parse_packet(p)) == []
