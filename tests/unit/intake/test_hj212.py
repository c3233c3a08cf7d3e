from datetime import UTC, datetime

import pytest
from support.shared import CONFORMANCE

from intake.domain.errors import Rejected
from intake.domain.feeds.hj212.packet import build_packet, crc16_hj212, parse_packet

PACKETS = CONFORMANCE / "hj212/packets.tsv"
APPENDIX_A = (
    b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;"
    b"CP=&&RtdInterval=30&&1C80"
)
AIR = (
    "QN=20220513162608370;ST=22;CN=2051;PW=123456;MN=AIR01;Flag=4;"
    "CP=&&DataTime=20220513162600;a34004-Avg=14,a34004-Flag=N&&"
)


def reason_of(raw: bytes, **kwargs: int) -> str:
    with pytest.raises(Rejected) as info:
        parse_packet(raw, **kwargs)
    return str(info.value.reason)


def conformance_rows() -> list[tuple[str, str, bytes]]:
    lines = PACKETS.read_text(encoding="ascii").splitlines()
    assert lines[0].split("\t") == ["expect", "source", "packet"]
    return [(e, s, p.encode("ascii")) for e, s, p in (line.split("\t") for line in lines[1:] if line)]


def test_appendix_a_crc_verifies() -> None:
    segment = APPENDIX_A[6:-4]
    assert len(segment) == 101
    assert crc16_hj212(segment) == 0x1C80
    # CRC-16/MODBUS of the same bytes differs; a MODBUS implementation must not pass this test.
    assert crc16_hj212(b"123456789") != 0x4B37


def test_conformance_file_has_five_rows() -> None:
    assert [row[0] for row in conformance_rows()] == ["valid"] * 4 + ["invalid"]


@pytest.mark.parametrize(("expect", "source", "raw"), conformance_rows(), ids=lambda v: str(v)[:40])
def test_conformance_rows_behave_as_marked(expect: str, source: str, raw: bytes) -> None:
    if expect == "valid":
        packet = parse_packet(raw)
        assert packet.mn and packet.cn
        assert packet.tolerances == ("missing_crlf",)  # the file stores packets without CRLF
    else:
        # Its declared length 0136 matches the segment; only the CRC (4980, data gives 3C00) is wrong.
        assert reason_of(raw) == "hj212.crc_mismatch"


def test_appendix_a_fields() -> None:
    packet = parse_packet(APPENDIX_A + b"\r\n")
    assert (packet.qn, packet.st, packet.cn, packet.pw) == ("20160801085857223", "32", "1062", "100000")
    assert (packet.mn, packet.flag, packet.edition) == ("010000A8900016F000169DC0", 5, 2017)
    assert packet.reply_wanted and not packet.is_split
    assert dict(packet.cp_params) == {"RtdInterval": "30"}
    assert packet.cp_items == {} and packet.cp_data_time is None and packet.tolerances == ()


def test_air_station_minute_data() -> None:
    raw = conformance_rows()[1][2]
    packet = parse_packet(raw)
    assert packet.edition == 2017 and packet.flag == 4 and not packet.reply_wanted
    assert packet.data_time_text == "20220513162600"
    assert packet.cp_data_time == datetime(2022, 5, 13, 8, 26, tzinfo=UTC)  # Beijing is UTC+8
    assert packet.cp_items["a34004"] == {"Avg": "14", "Flag": "N"}
    assert packet.cp_items["a21005"]["Avg"] == "0.427"
    assert len(packet.cp_items) == 11 and dict(packet.cp_params) == {}


def test_2005_packet_maps_old_codes_and_keeps_them() -> None:
    packet = parse_packet(conformance_rows()[3][2])
    assert packet.edition == 2005 and packet.qn is None and packet.flag is None
    assert packet.cp_items == {
        "w00000": {"Rtd": "36.91"},
        "w01018": {"Rtd": "231.0", "Flag": "N"},
        "w21003": {"Rtd": "1.803", "Flag": "N"},
    }
    assert packet.original_codes == {"w00000": "B01", "w01018": "011", "w21003": "060"}
    # 17-digit DataTime with milliseconds, 00:38 Beijing is the previous day in UTC.
    assert packet.cp_data_time == datetime(2016, 8, 23, 16, 38, 17, tzinfo=UTC)


def test_packet_is_immutable() -> None:
    packet = parse_packet(build_packet(AIR))
    with pytest.raises(AttributeError):
        packet.mn = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        packet.cp_items["a34004"]["Avg"] = "999"  # type: ignore[index]


def test_strict_packet_has_no_tolerances() -> None:
    raw = build_packet(AIR)
    assert raw.endswith(b"\r\n") and parse_packet(raw).tolerances == ()


def test_lowercase_crc_is_tolerated_and_recorded() -> None:
    raw = build_packet(AIR)
    lowered = raw[:-6] + raw[-6:-2].lower() + b"\r\n"
    assert raw[-6:-2] != raw[-6:-2].lower(), "pick a segment whose CRC has a letter"
    assert parse_packet(lowered).tolerances == ("lowercase_crc",)


@pytest.mark.parametrize("delta", [-1, 1])
def test_length_off_by_one_is_tolerated_when_crc_verifies(delta: int) -> None:
    raw = build_packet(AIR)
    declared = int(raw[2:6]) + delta
    packet = parse_packet(b"##%04d" % declared + raw[6:])
    assert packet.tolerances == ("length_off_by_one",)


def test_length_off_by_one_with_bad_crc_is_a_length_mismatch() -> None:
    raw = build_packet(AIR)
    bad = b"##%04d" % (int(raw[2:6]) + 1) + raw[6:-6] + b"0000\r\n"
    assert reason_of(bad) == "hj212.length_mismatch"


@pytest.mark.parametrize("delta", [-2, 2, 100])
def test_length_off_by_more_than_one_is_rejected(delta: int) -> None:
    raw = build_packet(AIR)
    assert reason_of(b"##%04d" % (int(raw[2:6]) + delta) + raw[6:]) == "hj212.length_mismatch"


def test_too_large_is_rejected_before_anything_else() -> None:
    raw = build_packet(AIR)
    assert reason_of(raw, max_bytes=len(raw) - 1) == "hj212.too_large"
    assert parse_packet(raw, max_bytes=len(raw)).mn == "AIR01"


@pytest.mark.parametrize(
    "raw",
    [b"", b"##", b"$$0005ABCDE1234\r\n", b"##00x5ABCDE1234", b"##0005ABCDE12G4", b"##0005ABCDE1234\n"],
)
def test_framing_errors(raw: bytes) -> None:
    assert reason_of(raw) == "hj212.framing"


@pytest.mark.parametrize("bad", ["é", "\t", "\x00", "\x7f"])
def test_non_printable_or_non_ascii_is_an_encoding_error(bad: str) -> None:
    data = AIR.replace("MN=AIR01", "MN=AIR" + bad).encode("utf-8")
    raw = b"##%04d%s%04X\r\n" % (len(data), data, crc16_hj212(data))
    assert reason_of(raw) == "hj212.encoding"


@pytest.mark.parametrize(
    "segment",
    [
        AIR.replace("MN=AIR01;", ""),
        AIR.replace("ST=22;", ""),
        AIR.replace("CN=2051;", ""),
        AIR.replace("PW=123456;", ""),
        AIR.replace("CP=&&", "XP=&&"),
        AIR.replace("MN=AIR01;", "MN=AIR01;MN=AIR02;"),
        AIR.replace("ST=22;", "ST=22;ST=22;"),
        AIR + ";CP=&&&&",
        AIR.replace("QN=20220513162608370;", ""),  # a 2017 packet needs QN
        AIR.replace("Flag=4;", "Flag=4;Foo=1;"),
        AIR.replace("ST=22", "ST=2x"),
        AIR.replace("MN=AIR01", "MN=AIR 01"),
        AIR.replace("Flag=4", "Flag=four"),
        AIR.replace("Flag=4", "Flag=256"),
        AIR.replace("Flag=4", "Flag=6"),  # split bit without PNUM/PNO
        AIR.replace("Flag=4;", "Flag=6;PNUM=2;PNO=3;"),
        AIR.replace("Flag=4;", "Flag=4;PNUM=1;PNO=1;"),
        AIR.replace("PW=123456", "PW="),
        AIR.replace(";MN", ";;MN"),
    ],
)
def test_segment_errors(segment: str) -> None:
    assert reason_of(build_packet(segment)) == "hj212.segment"


@pytest.mark.parametrize(
    "cp",
    [
        "DataTime=20220513162600;a34004-Avg=1&",
        "DataTime=20220513162600;;a34004-Avg=1",
        "DataTime=20220513162600;a34004-Avg=1;",
        "a34004-Avg",
        "a34004-Avg=1,a34004-Avg=2",
        "a34004-Avg=1=2",
        "-Avg=1",
        "a34004-=1",
        "a-b-c=1",
        "B01-Rtd=1;w00000-Flag=N",  # the 2005 and 2017 codes of one pollutant in one packet
        "RtdInterval=30;RtdInterval=60",
        "a34004-Avg=1&&a34004-Flag=N",
    ],
)
def test_cp_errors(cp: str) -> None:
    segment = f"QN=20220513162608370;ST=22;CN=2051;PW=1;MN=AIR01;Flag=4;CP=&&{cp}&&"
    assert reason_of(build_packet(segment)) == "hj212.cp"


@pytest.mark.parametrize(
    "text", ["2022051316260", "202205131626001", "20221301000000", "20220230000000", "x"]
)
def test_data_time_errors(text: str) -> None:
    assert reason_of(build_packet(AIR.replace("20220513162600", text))) == "hj212.data_time"


def test_empty_cp_is_allowed() -> None:
    packet = parse_packet(build_packet("ST=91;CN=9014;PW=1;MN=M1;CP=&&&&"))
    assert packet.cp_items == {} and packet.cp_params == {} and packet.edition == 2005


def test_data_time_with_milliseconds() -> None:
    packet = parse_packet(build_packet(AIR.replace("20220513162600", "20220513162600250")))
    assert packet.cp_data_time == datetime(2022, 5, 13, 8, 26, 0, 250_000, tzinfo=UTC)


def test_build_packet_refuses_what_it_cannot_frame() -> None:
    with pytest.raises(ValueError):
        build_packet("x" * 10_000)
    with pytest.raises(ValueError):
        build_packet("MN=é")


def test_the_access_password_is_never_repeated_in_a_refusal() -> None:
    """Before: `PW=s3cret=1` came back whole in the dead letter's detail, shown on the console."""
    segment = b"QN=20160801085857223;ST=32;CN=1062;PW=s3cret=1;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&"
    raw = b"##%04d" % len(segment) + segment + b"%04X\r\n" % crc16_hj212(segment)
    with pytest.raises(Rejected) as refused:
        parse_packet(raw)
    assert refused.value.reason == "hj212.segment" and "s3cret" not in refused.value.detail
    assert "PW=***" in refused.value.detail
