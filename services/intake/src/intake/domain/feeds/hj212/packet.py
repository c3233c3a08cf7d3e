"""HJ 212 packets: framing, CRC (HJ 212-2017 Appendix A), data segment and CP body.

The accepted dialect and every tolerance are specified in ``contracts/legacy/hj212.md``.
``parse_packet`` is total: for any input it returns an ``Hj212Packet`` or raises ``Rejected``.
"""

import functools
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from functools import reduce
from operator import xor
from types import MappingProxyType
from typing import Final, NamedTuple

from intake.domain.errors import Rejected
from intake.domain.feeds.hj212.codes import pollutant_code_2017

BEIJING: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
MAX_SEGMENT_LENGTH: Final = 9999  # four decimal digits

TOLERANCE_LOWERCASE_CRC: Final = "lowercase_crc"
TOLERANCE_MISSING_CRLF: Final = "missing_crlf"
TOLERANCE_LENGTH_OFF_BY_ONE: Final = "length_off_by_one"

FLAG_REPLY_WANTED: Final = 1 << 0
FLAG_SPLIT: Final = 1 << 1
FLAG_VERSION_2017: Final = 1 << 2

_HEAD_KEYS: Final = frozenset({"QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO"})
_MANDATORY_KEYS_IN_ORDER: Final = ("ST", "CN", "PW", "MN")
_MANDATORY_KEYS: Final = frozenset(_MANDATORY_KEYS_IN_ORDER)
_CP_MARKER: Final = "CP=&&"
_HEX: Final = b"0123456789abcdefABCDEF"
_PRINTABLE: Final = bytes(range(0x20, 0x7F))
_MN_RE: Final = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_CP_KEY_RE: Final = re.compile(r"[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)?")
_DATA_TIME_RE: Final = re.compile(r"[0-9]{14}(?:[0-9]{3})?")


class Hj212Packet(NamedTuple):
    """One verified HJ 212 packet. Mappings are read-only views; values stay raw strings.

    ``cp_items`` is keyed by the HJ 212-2017 pollutant code; ``original_codes`` maps such a key
    back to the 2005 code the device sent, for the items that were renamed.
    ``cp_data_time`` is the CP ``DataTime`` (Beijing local time) converted to UTC.
    A named tuple: immutable like a frozen dataclass, and made in one step (a packet is made for
    every record of the feed; a frozen dataclass sets its fifteen fields one by one).
    """

    qn: str | None
    st: str
    cn: str
    pw: str
    mn: str
    flag: int | None
    pnum: int | None
    pno: int | None
    edition: int
    data_time_text: str | None
    cp_data_time: datetime | None
    cp_items: Mapping[str, Mapping[str, str]]
    cp_params: Mapping[str, str]
    original_codes: Mapping[str, str]
    tolerances: tuple[str, ...]

    @property
    def reply_wanted(self) -> bool:
        return self.flag is not None and bool(self.flag & FLAG_REPLY_WANTED)

    @property
    def is_split(self) -> bool:
        return self.flag is not None and bool(self.flag & FLAG_SPLIT)


def _crc_rounds(value: int) -> int:
    """The eight shift-and-XOR rounds of Appendix A applied to one register value."""
    for _ in range(8):
        carry = value & 1
        value >>= 1
        if carry:
            value ^= 0xA001
    return value


# The rounds are linear and, within eight of them, the bits they test come only from the low byte:
# rounds(v) = (v >> 8) ^ rounds(v & 0xFF). One table lookup per byte instead of eight rounds.
_CRC_TABLE = tuple(_crc_rounds(i) for i in range(256))


def _high_byte_map(power: int) -> tuple[int, ...]:
    """``x -> L^power(x)``, where L(x) = _CRC_TABLE[x] >> 8 is how one byte step moves the register's
    high byte: h' = L(h ^ byte). L is linear over GF(2) and L^8 is the identity."""
    out = []
    for x in range(256):
        for _ in range(power):
            x = _CRC_TABLE[x] >> 8
        out.append(x)
    return tuple(out)


_L_POWER = tuple(_high_byte_map(p) for p in range(8))
# The map from a byte's place p within an 8-byte word to the power of L its contribution takes.
_L_AT = tuple(_L_POWER[(8 - p) % 8] for p in range(8))


def crc16_hj212(data: bytes) -> int:
    """CRC of HJ 212-2017 Appendix A (not CRC-16/MODBUS: the register is shifted before the XOR).

    Each step is reg = T[(reg >> 8) ^ byte], so only the high byte h carries over: h' = L(h ^ byte).
    By linearity, h before the last byte is L^m(0xFF) XOR, over the first m bytes, L^(m-j)(b_j); as
    L^8 is the identity, the bytes whose distance from the end agrees modulo 8 are XORed together
    first, eight lanes of a word at a time (in C), then each lane's XOR goes through its power of L.
    Equal to ``crc16_hj212_reference`` for every input (property-tested)."""
    n = len(data)
    if n == 0:
        return 0xFFFF
    m = n - 1
    # Left-pad the first m bytes to whole words: byte j lands at k = j + pad, and m - j = -k mod 8.
    padded = bytes((-m) % 8) + data[:m]
    lanes = reduce(xor, memoryview(padded).cast("Q"), 0).to_bytes(8, sys.byteorder)
    at = _L_AT
    high = (
        _L_POWER[m % 8][0xFF]
        ^ at[0][lanes[0]]
        ^ at[1][lanes[1]]
        ^ at[2][lanes[2]]
        ^ at[3][lanes[3]]
        ^ at[4][lanes[4]]
        ^ at[5][lanes[5]]
        ^ at[6][lanes[6]]
        ^ at[7][lanes[7]]
    )
    return _CRC_TABLE[high ^ data[m]]


def crc16_hj212_reference(data: bytes) -> int:
    """The algorithm exactly as Appendix A states it, bit by bit (kept to check the table against)."""
    reg = 0xFFFF
    for byte in data:
        reg = _crc_rounds((reg >> 8) ^ byte)
    return reg


def build_packet(segment: str) -> bytes:
    """Frame a data segment as the standard prescribes: ``##``, length, segment, upper-case CRC, CRLF.

    Raises ``ValueError`` for a segment that is not ASCII or longer than 9999 bytes.
    """
    data = segment.encode("ascii")
    if len(data) > MAX_SEGMENT_LENGTH:
        raise ValueError(f"data segment of {len(data)} bytes exceeds {MAX_SEGMENT_LENGTH}")
    return b"##%04d%s%04X\r\n" % (len(data), data, crc16_hj212(data))


def parse_packet(raw: bytes, *, max_bytes: int = 16384) -> Hj212Packet:
    """Verify framing, length and CRC of ``raw`` and decode its data segment.

    Raises ``Rejected`` (reasons ``hj212.*``, see the contract) for anything outside the accepted
    dialect; never raises anything else. Accepted deviations are listed in ``tolerances``.
    """
    if len(raw) > max_bytes:
        raise Rejected("hj212.too_large", f"packet of {len(raw)} bytes exceeds the limit of {max_bytes}")
    segment, tolerances = _unframe(raw)
    return _parse_segment(_decode(segment), tolerances)


def _unframe(raw: bytes) -> tuple[bytes, list[str]]:
    tolerances: list[str] = []
    body = raw
    if body.endswith(b"\r\n"):
        body = body[:-2]
    else:
        tolerances.append(TOLERANCE_MISSING_CRLF)
    if len(body) < 10 or not body.startswith(b"##"):
        raise Rejected("hj212.framing", "packet must start with '##' and hold a length and a 4-digit CRC")
    length_text, crc_text = body[2:6], body[-4:]
    if not length_text.isdigit() or not length_text.isascii():
        raise Rejected("hj212.framing", f"length field {length_text!r} is not 4 decimal digits")
    if crc_text.translate(None, _HEX):
        raise Rejected("hj212.framing", f"CRC field {crc_text!r} at the end is not 4 hex digits")
    segment = body[6:-4]
    declared, actual = int(length_text), len(segment)
    received, computed = int(crc_text, 16), crc16_hj212(segment)
    if declared != actual:
        if abs(declared - actual) != 1 or received != computed:
            raise Rejected(
                "hj212.length_mismatch",
                f"declared length {declared}, data segment has {actual} bytes"
                + ("" if received == computed else f" and its CRC {computed:04X} != {received:04X}"),
            )
        tolerances.append(TOLERANCE_LENGTH_OFF_BY_ONE)
    if received != computed:
        raise Rejected(
            "hj212.crc_mismatch", f"declared CRC {crc_text.decode()}, data segment gives {computed:04X}"
        )
    if crc_text != crc_text.upper():
        tolerances.append(TOLERANCE_LOWERCASE_CRC)
    return segment, tolerances


def _decode(segment: bytes) -> str:
    # Deleting the printable bytes (in C) leaves nothing in a valid segment; only a refusal looks
    # for where the first other byte is.
    if segment.translate(None, _PRINTABLE):
        offset, byte = next((i, b) for i, b in enumerate(segment) if not 0x20 <= b <= 0x7E)
        raise Rejected(
            "hj212.encoding", f"byte 0x{byte:02X} at data segment offset {offset} is not printable ASCII"
        )
    return segment.decode("ascii")


def _parse_segment(text: str, tolerances: list[str]) -> Hj212Packet:
    cp_starts = [i for i in _occurrences(text, _CP_MARKER) if i == 0 or text[i - 1] == ";"]
    if not cp_starts:
        raise Rejected("hj212.segment", "data segment has no 'CP=&&' field")
    if len(cp_starts) > 1:
        raise Rejected("hj212.segment", f"data segment has {len(cp_starts)} CP fields")
    head_text, cp_text = text[: cp_starts[0]], text[cp_starts[0] + len(_CP_MARKER) :]
    head = _parse_head(head_text)
    if not cp_text.endswith("&&"):
        raise Rejected("hj212.cp", "CP body is not closed by '&&' at the end of the data segment")
    items, params, original_codes = _parse_cp(cp_text[:-2])
    data_time_text = params.pop("DataTime", None)
    flag = _optional_int(head, "Flag")
    edition = 2017 if flag is not None and flag & FLAG_VERSION_2017 else 2005
    pnum, pno = _optional_int(head, "PNUM"), _optional_int(head, "PNO")
    qn = head.get("QN")
    _check_split(flag, pnum, pno, qn)
    if edition == 2017 and qn is None:
        raise Rejected("hj212.segment", "2017-edition packet (Flag version bit set) has no QN")
    return Hj212Packet(
        qn=qn,
        st=head["ST"],
        cn=head["CN"],
        pw=head["PW"],
        mn=head["MN"],
        flag=flag,
        pnum=pnum,
        pno=pno,
        edition=edition,
        data_time_text=data_time_text,
        cp_data_time=None if data_time_text is None else parse_data_time(data_time_text),
        cp_items=MappingProxyType({code: MappingProxyType(f) for code, f in items.items()}),
        cp_params=MappingProxyType(params),
        original_codes=MappingProxyType(original_codes),
        tolerances=tuple(tolerances),
    )


def _occurrences(text: str, needle: str) -> list[int]:
    """Every offset where `needle` begins in `text` (overlapping ones too)."""
    found: list[int] = []
    at = text.find(needle)
    while at >= 0:
        found.append(at)
        at = text.find(needle, at + 1)
    return found


def _parse_head(head_text: str) -> dict[str, str]:
    head: dict[str, str] = {}
    # head_text is empty or ends with the ';' that precedes CP (see _parse_segment).
    for position, field in enumerate(head_text[:-1].split(";") if head_text else []):
        key, sep, value = field.partition("=")
        if not sep or not value or "=" in value:
            # the access password (PW) is never repeated in a refusal: dead letters are read by many
            shown = "PW=***" if field.upper().startswith("PW") else repr(field)
            raise Rejected("hj212.segment", f"field {position} {shown} is not key=value")
        if key not in _HEAD_KEYS:
            raise Rejected("hj212.segment", f"unknown field {key!r} in the data segment")
        if key in head:
            raise Rejected("hj212.segment", f"field {key} appears twice")
        head[key] = value
    if not head.keys() >= _MANDATORY_KEYS:
        missing = next(key for key in _MANDATORY_KEYS_IN_ORDER if key not in head)
        raise Rejected("hj212.segment", f"mandatory field {missing} is missing")
    for key in ("ST", "CN"):
        if not _is_digits(head[key]):
            raise Rejected("hj212.segment", f"{key}={head[key]!r} is not a decimal code")
    if not _MN_RE.fullmatch(head["MN"]):
        raise Rejected("hj212.segment", f"MN={head['MN']!r} is not 1-64 characters of [A-Za-z0-9_.-]")
    return head


def _is_digits(text: str) -> bool:
    """One or more of 0-9 (the segment is printable ASCII: no other digit can be in it)."""
    return text.isdigit() and text.isascii()


def _optional_int(head: Mapping[str, str], key: str) -> int | None:
    value = head.get(key)
    if value is None:
        return None
    if len(value) > 4 or not _is_digits(value):
        raise Rejected("hj212.segment", f"{key}={value!r} is not a decimal number of at most 4 digits")
    return int(value)


def _check_split(flag: int | None, pnum: int | None, pno: int | None, qn: str | None) -> None:
    if flag is not None and flag > 255:
        raise Rejected("hj212.segment", f"Flag={flag} does not fit the 8 flag bits")
    split = flag is not None and bool(flag & FLAG_SPLIT)
    if not split:
        if pnum is not None or pno is not None:
            raise Rejected("hj212.segment", "PNUM/PNO present but the Flag split bit is not set")
        return
    if pnum is None or pno is None:
        raise Rejected("hj212.segment", "Flag split bit set but PNUM or PNO is missing")
    if not 1 <= pno <= pnum:
        raise Rejected("hj212.segment", f"PNO={pno} is outside 1..PNUM={pnum}")
    if qn is None:
        raise Rejected("hj212.segment", "split packet has no QN to tie its parts together")


class _CpKey(NamedTuple):
    """What a CP key says: a parameter (``DataTime``: no pollutant code), or a field of an item
    (``a34004-Flag``: the code as sent, its 2017 code, the field's suffix and that suffix case-folded)."""

    code: str
    new_code: str | None  # None: a parameter
    suffix: str
    folded: str


@functools.lru_cache(maxsize=1024)
def _cp_key(key: str) -> _CpKey | None:
    """``key`` read once for every packet that sends it (a city's stations send a few dozen keys);
    None for a key that is not one. Bounded: a device sending ever new keys costs a lookup, no memory."""
    if not _CP_KEY_RE.fullmatch(key):
        return None
    code, dash, suffix = key.partition("-")
    if not dash:
        return _CpKey(key, None, "", "")
    return _CpKey(code, pollutant_code_2017(code), suffix, suffix.casefold())


def _parse_cp(
    body: str,
) -> tuple[dict[str, dict[str, str]], dict[str, str], dict[str, str]]:
    items: dict[str, dict[str, str]] = {}
    params: dict[str, str] = {}
    original_codes: dict[str, str] = {}
    sent_as: dict[str, str] = {}  # 2017 code -> code as sent, to catch "B01" and "w00000" together
    folded_sent: set[tuple[str, str]] = set()  # (2017 code, suffix case-folded) of each field sent
    if not body:
        return items, params, original_codes
    for item_no, item in enumerate(body.split(";")):
        if not item:
            raise Rejected("hj212.cp", f"CP item {item_no} is empty")
        for field in item.split(","):
            key, sep, value = field.partition("=")
            cp_key = _cp_key(key)
            if not sep or "=" in value or "&" in value or cp_key is None:
                raise Rejected("hj212.cp", f"CP item {item_no}: {field!r} is not key=value")
            new_code = cp_key.new_code
            if new_code is None:
                if key in params:
                    raise Rejected("hj212.cp", f"CP key {key} appears twice")
                params[key] = value
                continue
            code = cp_key.code
            if sent_as.setdefault(new_code, code) != code:
                raise Rejected("hj212.cp", f"CP codes {sent_as[new_code]} and {code} both mean {new_code}")
            if new_code != code:
                original_codes[new_code] = code
            # "-Flag" and "-flag" are one field: sent twice, its meaning would be ambiguous.
            folded = (new_code, cp_key.folded)
            if folded in folded_sent:
                raise Rejected("hj212.cp", f"CP key {key} appears twice")
            folded_sent.add(folded)
            fields = items.get(new_code)
            if fields is None:
                fields = items[new_code] = {}
            fields[cp_key.suffix] = value
    return items, params, original_codes


@functools.lru_cache(maxsize=4096)
def parse_data_time(text: str) -> datetime:
    """Parse a ``DataTime`` (``YYYYMMDDhhmmss`` or with ``zzz`` milliseconds), Beijing time, into UTC.
    Cached: a city's stations report the same minutes (a refusal raises and is never cached)."""
    if not _DATA_TIME_RE.fullmatch(text):
        raise Rejected("hj212.data_time", f"DataTime={text!r} is not 14 or 17 digits")
    month, day, hour, minute, second = (int(text[i : i + 2]) for i in (4, 6, 8, 10, 12))
    millis = int(text[14:]) if len(text) == 17 else 0
    try:
        local = datetime(int(text[:4]), month, day, hour, minute, second, millis * 1000, tzinfo=BEIJING)
        return local.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise Rejected("hj212.data_time", f"DataTime={text!r} is not a calendar time: {exc}") from None
