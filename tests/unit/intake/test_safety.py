"""parse_safety against contracts/legacy/safety.v1.md and its samples in contracts/legacy/examples/safety."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from defusedxml.ElementTree import parse as parse_xml
from hypothesis import given
from hypothesis import strategies as st

from intake.domain.errors import Rejected
from intake.domain.feeds.safety.record import (
    HANDLING_STATUSES,
    SAFETY_EVENT_TYPES,
    SAFETY_LEVELS,
    Reporter,
    SafetyPosition,
    parse_safety,
)

CONTRACTS = Path(__file__).resolve().parents[3] / "contracts" / "legacy"
EXAMPLES = CONTRACTS / "examples" / "safety"
EXPECTED: dict[str, dict[str, str]] = json.loads((EXAMPLES / "expected.json").read_text("utf-8"))["invalid"]
VALID = sorted(p.name for p in EXAMPLES.glob("valid-*.xml"))
INVALID = sorted(p.name for p in EXAMPLES.glob("invalid-*.xml"))
FULL = (EXAMPLES / "valid-neighbour-dispute-full.xml").read_bytes()


def document(title: str = "楼上漏水", declaration: str = "GBK", **overrides: str) -> str:
    fields = {
        "SJBH": "PA32100320261130000123",
        "SJLXDM": "0102",
        "SJDJ": "一般",
        "BT": escape(title),
        "MS": "描述",
        "FSSJ": "2026-11-30 08:15:00",
        "SBSJ": "2026-11-30 09:02:31",
        "FSDZ": "扬州市邗江区",
        "JD": "119.4183802",
        "WD": "32.3923204",
        "SBR": "<XM>王芳</XM><LXDH>13805271234</LXDH>",
        "CZZT": "待处置",
        **overrides,
    }
    body = "".join(f"<{tag}>{value}</{tag}>" for tag, value in fields.items() if value != "<absent>")
    return f'<?xml version="1.0" encoding="{declaration}"?><SJXX>{body}</SJXX>'


def reason_of(raw: bytes) -> str:
    with pytest.raises(Rejected) as caught:
        parse_safety(raw)
    return caught.value.reason


def test_every_sample_is_named_for_its_outcome_and_every_invalid_one_has_an_expectation() -> None:
    assert VALID and INVALID
    assert set(INVALID) == set(EXPECTED)
    assert {p.name for p in EXAMPLES.iterdir()} == {*VALID, *INVALID, "expected.json"}


@pytest.mark.parametrize("name", VALID)
def test_valid_samples_parse(name: str) -> None:
    record = parse_safety((EXAMPLES / name).read_bytes())
    assert record.source_id.startswith("PA")
    assert record.level in SAFETY_LEVELS


@pytest.mark.parametrize("name", INVALID)
def test_invalid_samples_are_refused_for_their_reason(name: str) -> None:
    with pytest.raises(Rejected) as caught:
        parse_safety((EXAMPLES / name).read_bytes())
    assert caught.value.reason == EXPECTED[name]["reason"]
    assert EXPECTED[name]["detail_contains"] in caught.value.detail


def test_full_sample_yields_every_field() -> None:
    record = parse_safety(FULL)
    assert record.source_id == "PA32100320261130000123"
    assert (record.event_type_code, record.event_type_name) == ("0102", "邻里纠纷")
    assert (record.level, record.handling_status) == ("一般", "待处置")
    assert record.title == "楼上漏水引发邻里纠纷"
    assert record.description.endswith("情绪激动。\n请社区调解员尽快介入。")
    assert record.occurred_text == "2026-11-30 08:15:00"
    assert record.occurred_at == datetime(2026, 11, 30, 0, 15, tzinfo=UTC)
    assert record.reported_at == datetime(2026, 11, 30, 1, 2, 31, tzinfo=UTC)
    assert record.address == "扬州市邗江区新盛街道文昌西路某小区3栋"
    assert record.position == SafetyPosition(lon=119.4183802, lat=32.3923204, system="GCJ02")
    assert record.grid_code == "321003009001004"
    assert record.reporter == Reporter(name="王芳", phone="13805271234", id_number="32100319800101002X")
    assert record.related_id is None
    assert record.declared_encoding == "GBK"
    assert dict(record.extra) == {}


def test_followup_links_to_the_earlier_event() -> None:
    record = parse_safety((EXAMPLES / "valid-followup-lowercase-label.xml").read_bytes())
    assert record.related_id == "PA32100320261130000123"
    assert record.handling_status == "已办结"


def test_gb18030_keeps_characters_outside_gbk() -> None:
    record = parse_safety((EXAMPLES / "valid-fire-hazard-gb18030.xml").read_bytes())
    assert record.declared_encoding == "GB18030"
    assert "䶮" in record.title
    assert "𠀀" in record.description


def test_unknown_elements_are_kept_and_zero_coordinates_mean_not_located() -> None:
    extra = parse_safety((EXAMPLES / "valid-extra-elements-no-coordinates.xml").read_bytes())
    assert dict(extra.extra) == {"SJLXMC": "邻里纠纷", "SBDW": "新盛街道综治中心"}
    assert extra.position is None
    assert parse_safety((EXAMPLES / "valid-not-located-zero-placeholder.xml").read_bytes()).position is None


def test_a_code_outside_the_table_parses_and_has_no_name() -> None:
    record = parse_safety((EXAMPLES / "valid-unlisted-type-code.xml").read_bytes())
    assert record.event_type_code == "0299"
    assert record.event_type_name is None


_GBK_TEXT = st.text(
    alphabet=st.characters(codec="gbk", exclude_categories=("Cc", "Cs", "Co", "Cn")), min_size=1, max_size=100
).filter(lambda text: text.strip() != "")


@given(_GBK_TEXT)
def test_gbk_text_round_trips(title: str) -> None:
    assert parse_safety(document(title).encode("gbk")).title == title.strip()


def test_utf8_declared_as_gbk_is_refused_not_decoded_as_mojibake() -> None:
    text = document("楼上漏水引发邻里纠纷")
    assert parse_safety(text.encode("gbk")).title == "楼上漏水引发邻里纠纷"
    with pytest.raises(Rejected) as caught:
        parse_safety(text.encode("utf-8"))
    assert caught.value.reason == "safety.encoding"
    assert "UTF-8" in caught.value.detail


def test_the_utf8_check_cannot_refuse_a_valid_gbk_document() -> None:
    # The contract's argument: every level is invalid UTF-8 in GBK, and a valid document has a level.
    for level in SAFETY_LEVELS:
        with pytest.raises(UnicodeDecodeError):
            level.encode("gbk").decode("utf-8")


def test_undecodable_byte_is_reported_at_its_offset() -> None:
    raw = document().encode("gbk")
    broken = raw.replace("王芳".encode("gbk"), "王".encode("gbk") + b"\xff")
    offset = broken.index(b"\xff")
    with pytest.raises(Rejected) as caught:
        parse_safety(broken)
    assert caught.value.reason == "safety.encoding"
    assert f"offset {offset}" in caught.value.detail


@pytest.mark.parametrize(
    "prolog",
    [
        '<!DOCTYPE SJXX [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE SJXX SYSTEM "http://127.0.0.1:9/sjxx.dtd">',
        '<!DOCTYPE SJXX [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>',
        "<!DOCTYPE SJXX>",
    ],
)
def test_any_doctype_is_forbidden(prolog: str) -> None:
    text = document().replace("?><SJXX>", f"?>{prolog}<SJXX>")
    assert reason_of(text.encode("gbk")) == "safety.forbidden_xml"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xef\xbb\xbf" + document().encode("gbk"), "safety.encoding"),
        (b" " + document().encode("gbk"), "safety.encoding"),
        (document().replace('encoding="GBK"', "").encode("gbk"), "safety.encoding"),
        (document(declaration="Big5").encode("gbk"), "safety.encoding"),
        (document(declaration="gb18030").encode("gb18030"), None),
        (document().replace("SJXX>", "sjxx>").encode("gbk"), "safety.unexpected_root"),
        (document(FSSJ="2026-11-30 8:15:00").encode("gbk"), "safety.invalid_value"),
        (document(FSSJ="1999-12-31 23:59:59").encode("gbk"), "safety.invalid_value"),
        (document(JD="１19.4183802").encode("gbk"), "safety.invalid_value"),
        (document(JD="<absent>").encode("gbk"), "safety.missing_field"),
        (document(JD="73", WD="3").encode("gbk"), None),
        (document(JD="135.999999", WD="53.999999").encode("gbk"), None),
        (document(JD="136").encode("gbk"), "safety.invalid_value"),
        (document(WD="54.0").encode("gbk"), "safety.invalid_value"),
        (document(SSWGBM="32100300900100").encode("gbk"), "safety.invalid_value"),
        (
            document(SBR="<XM>王芳</XM><LXDH>13805271234</LXDH><SFZH>32100319800101002x</SFZH>").encode(
                "gbk"
            ),
            "safety.invalid_value",
        ),
        (document(SBR="<XM>王芳</XM>").encode("gbk"), "safety.missing_field"),
        (document(SBR="<absent>").encode("gbk"), "safety.missing_field"),
        (document(CZZT="已完成").encode("gbk"), "safety.invalid_value"),
        (document(BT="标" * 101).encode("gbk"), "safety.invalid_value"),
    ],
)
def test_contract_rules(raw: bytes, reason: str | None) -> None:
    if reason is None:
        parse_safety(raw)
    else:
        assert reason_of(raw) == reason


def test_local_time_is_beijing_and_kept_as_text() -> None:
    record = parse_safety(document(FSSJ="2026-01-01 00:00:00").encode("gbk"))
    assert record.occurred_text == "2026-01-01 00:00:00"
    assert record.occurred_at == datetime(2025, 12, 31, 16, 0, tzinfo=UTC)


def test_size_limit() -> None:
    assert reason_of(FULL + b" " * 262_144) == "safety.too_large"
    with pytest.raises(Rejected, match=r"safety\.too_large"):
        parse_safety(FULL, max_bytes=len(FULL) - 1)
    parse_safety(FULL, max_bytes=len(FULL))


def test_personal_data_never_reaches_repr_or_refusal_details() -> None:
    record = parse_safety(FULL)
    shown = repr(record)
    for secret in ("王芳", "13805271234", "32100319800101002X"):
        assert secret not in shown
    bad_phone = (EXAMPLES / "invalid-reporter-phone.xml").read_bytes()
    with pytest.raises(Rejected) as caught:
        parse_safety(bad_phone)
    assert "138-0527-1234" not in str(caught.value)


def test_code_table_matches_the_contract_and_the_crosswalk() -> None:
    contract = (CONTRACTS / "safety.v1.md").read_text("utf-8")
    listed = dict(re.findall(r"\| ([0-9]{4}) \| ([^|]+?) (?=\|)", contract))
    assert listed == dict(SAFETY_EVENT_TYPES)
    crosswalk = json.loads((resources.files("intake.data") / "crosswalk.v1.json").read_text("utf-8"))
    mapped = {code: entry["zh"] for code, entry in crosswalk["networks"]["safety"]["codes"].items()}
    assert mapped == dict(SAFETY_EVENT_TYPES)


def test_xsd_declares_the_contracts_elements_and_enumerations() -> None:
    xs = "{http://www.w3.org/2001/XMLSchema}"
    xsd = parse_xml(CONTRACTS / "safety.v1.xsd").getroot()

    def declared(path: str) -> dict[str | None, bool]:
        return {
            e.get("name"): e.get("minOccurs", "1") != "0" for e in xsd.findall(f"{path}/{xs}all/{xs}element")
        }

    def enumeration(name: str) -> tuple[str | None, ...]:
        path = f"{xs}simpleType[@name='{name}']/{xs}restriction/{xs}enumeration"
        return tuple(e.get("value") for e in xsd.findall(path))

    rows = re.findall(
        r"^\| `([A-Z]+)` +\| [^|]+\| (yes|no|pair) +\|", (CONTRACTS / "safety.v1.md").read_text(), re.M
    )
    assert declared(f"{xs}element[@name='SJXX']/{xs}complexType") == {
        name: req == "yes" for name, req in rows
    }
    assert declared(f"{xs}complexType[@name='Reporter']") == {"XM": True, "LXDH": True, "SFZH": False}
    assert enumeration("EventLevel") == SAFETY_LEVELS
    assert enumeration("HandlingStatus") == HANDLING_STATUSES


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_only_ever_raise_rejected(raw: bytes) -> None:
    try:
        parse_safety(raw)
    except Rejected:
        pass


@given(st.binary(max_size=512))
def test_arbitrary_bytes_after_a_valid_declaration_only_ever_raise_rejected(tail: bytes) -> None:
    try:
        parse_safety(b'<?xml version="1.0" encoding="GBK"?><SJXX>' + tail)
    except Rejected:
        pass


@given(st.data())
def test_mutated_samples_parse_or_raise_rejected(data: st.DataObject) -> None:
    raw = bytearray((EXAMPLES / data.draw(st.sampled_from(VALID))).read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position : position + data.draw(st.integers(0, 3))] = data.draw(st.binary(max_size=3))
    try:
        parse_safety(bytes(raw))
    except Rejected:
        pass
