"""Property tests of the HJ 212 parser: builder round trip and totality on arbitrary input."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from intake.domain.errors import Rejected
from intake.domain.feeds.hj212.codes import POLLUTANT_CODES_2005_TO_2017
from intake.domain.feeds.hj212.packet import build_packet, crc16_hj212, parse_packet

TEXT = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"
codes = st.from_regex(r"[aw][0-9]{5}|LA", fullmatch=True)
suffixes = st.sampled_from(["Rtd", "Min", "Avg", "Max", "ZsRtd", "Cou", "Flag", "EFlag", "SampleTime"])
values = st.text(alphabet=TEXT + ".-+ ", max_size=12)
items = st.dictionaries(codes, st.dictionaries(suffixes, values, min_size=1, max_size=4), max_size=6)
params = st.dictionaries(st.sampled_from(["RtdInterval", "MinInterval", "SystemTime", "RestartTime"]), values)
data_times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1))


@dataclass(frozen=True)
class Fields:
    qn: str
    st: str
    cn: str
    pw: str
    mn: str
    flag: int
    pnum: int | None
    pno: int | None
    data_time: datetime | None
    items: dict[str, dict[str, str]]
    params: dict[str, str]

    def render(self) -> str:
        head = f"QN={self.qn};ST={self.st};CN={self.cn};PW={self.pw};MN={self.mn};Flag={self.flag};"
        if self.pnum is not None:
            head += f"PNUM={self.pnum};PNO={self.pno};"
        cp = [] if self.data_time is None else [f"DataTime={self.data_time:%Y%m%d%H%M%S}"]
        cp += [f"{key}={value}" for key, value in self.params.items()]
        for code, fields in self.items.items():
            cp.append(",".join(f"{code}-{suffix}={value}" for suffix, value in fields.items()))
        return head + "CP=&&" + ";".join(cp) + "&&"


@st.composite
def segments(draw: st.DrawFn) -> Fields:
    split = draw(st.booleans())
    pnum = draw(st.integers(1, 99)) if split else None
    return Fields(
        qn=draw(st.from_regex(r"[0-9]{17}", fullmatch=True)),
        st=draw(st.sampled_from(["21", "22", "23", "31", "32", "39", "91"])),
        cn=draw(st.sampled_from(["2011", "2051", "2061", "2031", "9014", "1062"])),
        pw=draw(st.text(alphabet=TEXT, min_size=1, max_size=24)),
        mn=draw(st.text(alphabet=TEXT + ".-", min_size=1, max_size=24)),
        flag=draw(st.sampled_from([4, 5])) | (2 if split else 0),
        pnum=pnum,
        pno=None if pnum is None else draw(st.integers(1, pnum)),
        data_time=draw(st.none() | data_times),
        items=draw(items),
        params=draw(params),
    )


@given(segments())
def test_build_then_parse_round_trips(f: Fields) -> None:
    packet = parse_packet(build_packet(f.render()))
    assert (packet.qn, packet.st, packet.cn, packet.pw, packet.mn) == (f.qn, f.st, f.cn, f.pw, f.mn)
    assert (packet.flag, packet.pnum, packet.pno, packet.edition) == (f.flag, f.pnum, f.pno, 2017)
    assert packet.cp_items == f.items and packet.cp_params == f.params
    assert packet.original_codes == {} and packet.tolerances == ()
    if f.data_time is None:
        assert packet.cp_data_time is None
    else:
        assert packet.cp_data_time is not None
        beijing = f.data_time.replace(microsecond=0)
        assert packet.cp_data_time.replace(tzinfo=None) == beijing - timedelta(hours=8)


@given(st.sampled_from(sorted(POLLUTANT_CODES_2005_TO_2017)), values)
def test_2005_codes_parse_under_their_2017_code(old: str, value: str) -> None:
    packet = parse_packet(build_packet(f"ST=32;CN=2011;PW=1;MN=M;CP=&&{old}-Rtd={value}&&"))
    new = POLLUTANT_CODES_2005_TO_2017[old]
    assert packet.cp_items == {new: {"Rtd": value}} and packet.original_codes == {new: old}


@settings(max_examples=500)
@given(st.binary(max_size=300))
@example(b"##0000&&0000")
@example(b"##0005CP=&&" + b"%04X" % crc16_hj212(b"CP=&&"))
def test_arbitrary_bytes_only_ever_raise_rejected(raw: bytes) -> None:
    try:
        parse_packet(raw)
    except Rejected as exc:
        assert str(exc.reason).startswith("hj212.")


@settings(max_examples=500)
@given(segments(), st.data())
def test_mutated_packets_parse_or_raise_rejected(f: Fields, data: st.DataObject) -> None:
    """Mutations keep framing and CRC valid often enough to exercise the segment and CP parser."""
    segment = bytearray(f.render().encode())
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(segment)))
        byte = data.draw(st.sampled_from(b";,=&-#\r\n\x00\xff 0aZ"))
        if data.draw(st.booleans()) and position < len(segment):
            segment[position] = byte
        else:
            segment.insert(position, byte)
    raw = b"##%04d%s%04X\r\n" % (len(segment), bytes(segment), crc16_hj212(bytes(segment)))
    try:
        packet = parse_packet(raw)
    except Rejected as exc:
        assert str(exc.reason).startswith("hj212.")
    else:
        assert packet.mn and packet.st.isdigit() and packet.cn.isdigit()


@given(st.binary(max_size=600))
def test_table_crc_equals_the_appendix_a_algorithm_bit_by_bit(data: bytes) -> None:
    from intake.domain.feeds.hj212.packet import crc16_hj212, crc16_hj212_reference

    assert crc16_hj212(data) == crc16_hj212_reference(data)
