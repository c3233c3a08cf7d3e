"""The Open311 form parser: what it accepts, each refusal and its reason, totality on arbitrary input,
and the Report it gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from intake.domain.coords import CoordSystem
from intake.domain.errors import Rejected
from intake.domain.feeds.open311.record import (
    MAX_BYTES,
    Open311Request,
    parse_open311,
    reports_from_open311,
    to_report,
)
from intake.domain.report import Intent
from intake.domain.severity import Severity

RID = "7d0f3c1e-6d2a-4c8e-9a51-3f0e2d7b8c41"
AT = datetime(2026, 3, 1, 2, 15, 31, tzinfo=UTC)
FULL = {
    "api_key": "xyz",
    "jurisdiction_id": "yangzhou.gov.cn",
    "service_code": "001",
    "lat": "32.3942",
    "long": "119.4129",
    "address_string": "扬州市邗江区新盛街道文昌西路 88 号",
    "email": "resident@example.cn",
    "device_id": "dev-1",
    "account_id": "acc-9",
    "first_name": "小明",
    "last_name": "王",
    "phone": "+86 138 0000 0000",
    "description": "路面塌陷，约一米宽\r\n请尽快处理",
    "media_url": "https://img.example.cn/p/1.jpg",
    "attribute[WIDTH]": "1m",
    "attribute[SIDES][]": "north",
}


def parse(fields: dict[str, str] | list[tuple[str, str]] | bytes, **kw: object) -> Open311Request:
    raw = fields if isinstance(fields, bytes) else urlencode(fields).encode()
    return parse_open311(raw, service_request_id=kw.get("rid", RID), received_at=kw.get("at", AT))  # type: ignore[arg-type]


def reason(fields: dict[str, str] | list[tuple[str, str]] | bytes) -> str:
    with pytest.raises(Rejected) as caught:
        parse(fields)
    return caught.value.reason


def test_a_full_request_parses_every_field() -> None:
    req = parse([*FULL.items(), ("attribute[SIDES][]", "east")])
    assert req.service_request_id == RID and req.received_at == AT
    assert (req.service_code, req.lat, req.long) == ("001", 32.3942, 119.4129)
    assert req.address_string == FULL["address_string"]
    assert req.description == FULL["description"]  # kept as given, line breaks and all
    assert (req.first_name, req.last_name, req.phone, req.email) == (
        "小明",
        "王",
        "+86 138 0000 0000",
        "resident@example.cn",
    )
    assert (req.device_id, req.account_id, req.jurisdiction_id) == ("dev-1", "acc-9", "yangzhou.gov.cn")
    assert req.media_url == "https://img.example.cn/p/1.jpg"
    assert req.attributes == (("WIDTH", ("1m",)), ("SIDES", ("north", "east")))
    assert req.reporter_name == "小明 王"


def test_the_same_bytes_parse_identically_and_received_at_is_utc() -> None:
    raw = urlencode(FULL).encode()
    local = AT.astimezone(timezone(timedelta(hours=8)))
    first = parse_open311(raw, service_request_id=RID, received_at=AT)
    again = parse_open311(raw, service_request_id=RID, received_at=local)
    assert first == again and again.received_at.tzinfo is UTC


@pytest.mark.parametrize(
    "location",
    [{"lat": "32.39", "long": "119.41"}, {"address_string": "文昌西路 88 号"}, {"address_id": "A-17"}],
)
def test_any_one_of_the_three_locations_is_enough(location: dict[str, str]) -> None:
    req = parse({"service_code": "003", **location})
    assert req.description is None and req.email is None and req.attributes == ()


def test_blank_optional_fields_count_as_absent_and_unknown_fields_are_ignored() -> None:
    req = parse(
        {"service_code": "003", "address_id": "A-17", "email": "", "lat": " ", "long": "", "foo": "bar"}
    )
    assert req.email is None and req.lat is None


def test_raw_utf8_and_plus_for_space_are_accepted() -> None:
    req = parse("service_code=005&address_string=文昌西路+88号&description=很+吵".encode())
    assert (req.address_string, req.description) == ("文昌西路 88号", "很 吵")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"address_id": "A"}, "open311.missing_field"),
        ({"service_code": " ", "address_id": "A"}, "open311.missing_field"),
        ({"service_code": "001"}, "open311.missing_field"),
        ({"service_code": "001", "lat": "32.1"}, "open311.missing_field"),
        ({"service_code": "001", "long": "119.1"}, "open311.missing_field"),
        ({"service_code": "00 1", "address_id": "A"}, "open311.invalid_value"),
        ({"service_code": "001", "lat": "91", "long": "119"}, "open311.invalid_value"),
        ({"service_code": "001", "lat": "-90.0001", "long": "119"}, "open311.invalid_value"),
        ({"service_code": "001", "lat": "32", "long": "180.5"}, "open311.invalid_value"),
        ({"service_code": "001", "lat": "nan", "long": "119"}, "open311.invalid_value"),
        ({"service_code": "001", "lat": "inf", "long": "119"}, "open311.invalid_value"),
        ({"service_code": "001", "lat": "3e1", "long": "119"}, "open311.invalid_value"),
        ({"service_code": "001", "lat": "３２", "long": "119"}, "open311.invalid_value"),  # full-width digits
        ({"service_code": "001", "address_id": "A", "description": "x" * 4001}, "open311.invalid_value"),
        ({"service_code": "001", "address_id": "A", "description": "a\x00b"}, "open311.invalid_value"),
        ({"service_code": "001", "address_id": "A", "email": "not-an-address"}, "open311.invalid_value"),
        ({"service_code": "001", "address_id": "A", "phone": "call me"}, "open311.invalid_value"),
        (
            {"service_code": "001", "address_id": "A", "media_url": "javascript:alert(1)"},
            "open311.invalid_value",
        ),
        ({"service_code": "001", "address_id": "A", "media_url": "/relative.jpg"}, "open311.invalid_value"),
        ({"service_code": "001", "address_id": "A", "attribute[bad code]": "1"}, "open311.invalid_value"),
        ({"service_code": "001", "address_id": "A", "attribute": "1"}, "open311.invalid_value"),
        ({"service_code": "001", "address_id": "A", "first_name": "x" * 101}, "open311.invalid_value"),
    ],
)
def test_each_refusal_has_its_reason(fields: dict[str, str], expected: str) -> None:
    assert reason(fields) == expected


def test_a_description_of_exactly_4000_characters_is_accepted() -> None:
    assert (
        parse({"service_code": "001", "address_id": "A", "description": "坑" * 4000}).description
        == "坑" * 4000
    )


def test_a_field_given_twice_is_refused() -> None:
    assert (
        reason([("service_code", "001"), ("service_code", "002"), ("address_id", "A")])
        == "open311.invalid_value"
    )


def test_bytes_that_are_not_utf8_are_an_encoding_error() -> None:
    assert reason(b"service_code=001&address_string=\xd6\xd0") == "open311.encoding"
    assert reason(b"service_code=001&address_string=%D6%D0") == "open311.encoding"  # GBK, percent-encoded


def test_size_limits() -> None:
    head = b"service_code=001&address_id=A&x="
    at_limit = head + b"y" * (MAX_BYTES - len(head))
    assert len(at_limit) == MAX_BYTES and parse(at_limit).service_code == "001"
    assert reason(at_limit + b"y") == "open311.too_large"
    assert reason(b"&".join([b"service_code=001&address_id=A", *[b"k=v"] * 300])) == "open311.too_large"


def test_refusals_never_echo_personal_fields() -> None:
    with pytest.raises(Rejected) as caught:
        parse({"service_code": "001", "address_id": "A", "phone": "secret 13800000000 x"})
    assert "13800000000" not in str(caught.value)
    with pytest.raises(Rejected) as caught:
        parse({"service_code": "001", "address_id": "A", "last_name": "王\x01"})
    assert "王" not in str(caught.value)


def test_a_service_request_id_that_is_not_an_id_is_refused_and_naive_times_are_a_bug() -> None:
    with pytest.raises(Rejected):
        parse(FULL, rid="")
    with pytest.raises(Rejected):
        parse(FULL, rid="a/b")
    with pytest.raises(ValueError):
        parse(FULL, at=datetime(2026, 3, 1))


@given(st.binary(max_size=2048))
@example(b"")
@example(b"&&&=&")
@example(b"service_code=001&lat=%")
@example(b"service_code=001&address_id=%FF")
def test_arbitrary_bytes_parse_or_raise_rejected_only(raw: bytes) -> None:
    try:
        req = parse_open311(raw, service_request_id=RID, received_at=AT)
    except Rejected as error:
        assert error.reason.startswith("open311.")
    else:
        assert req == parse_open311(raw, service_request_id=RID, received_at=AT)


form_keys = st.sampled_from(
    ["service_code", "lat", "long", "address_string", "address_id", "description", "email", "phone",
     "media_url", "first_name", "attribute[A]", "attribute[B][]", "other"]
)  # fmt: skip


@given(st.lists(st.tuples(form_keys, st.text(max_size=60)), max_size=12))
def test_arbitrary_forms_parse_or_raise_rejected_only(pairs: list[tuple[str, str]]) -> None:
    raw = urlencode(pairs).encode()
    try:
        req = parse_open311(raw, service_request_id=RID, received_at=AT)
    except Rejected as error:
        assert error.reason.startswith("open311.")
    else:
        assert req.lat is not None or req.address_string is not None or req.address_id is not None
        assert req == parse_open311(raw, service_request_id=RID, received_at=AT)


def test_to_report_is_the_network_neutral_report() -> None:
    report = to_report(parse(FULL))
    assert (report.network, report.source_id, report.intent) == ("open311", RID, Intent.REPORT)
    assert report.source_code == "001" and report.severity is Severity.IV
    assert report.position is not None
    assert (report.position.lat, report.position.lon, report.position.system) == (
        32.3942,
        119.4129,
        CoordSystem.WGS84,
    )
    assert report.reported.utc == AT and report.reported.zone == "UTC"
    assert report.title == "路面塌陷，约一米宽"
    assert report.description == FULL["description"]
    assert report.address == FULL["address_string"]
    assert (report.reporter.name, report.reporter.phone) == ("小明 王", "+86 138 0000 0000")
    assert dict(report.attributes) == {"service_code": "001", "media_url": "https://img.example.cn/p/1.jpg"}


def test_to_report_without_coordinates_or_description() -> None:
    report = to_report(parse({"service_code": "016", "address_id": "A-17"}))
    assert report.position is None and report.description == "" and report.title == "Open311 service 016"
    assert report.reporter.name is None and dict(report.attributes)["media_url"] is None


def test_the_pipeline_adapter_reads_id_and_time_from_the_headers() -> None:
    raw = urlencode(FULL).encode()
    headers = {"open311_service_request_id": RID, "open311_received_at": "2026-03-01T02:15:31Z"}
    (report,) = reports_from_open311(raw, headers)
    assert report == to_report(parse_open311(raw, service_request_id=RID, received_at=AT))
    for broken in (
        {},
        {**headers, "open311_received_at": "yesterday"},
        {**headers, "open311_received_at": "2026-03-01T02:15:31"},
    ):
        with pytest.raises(Rejected):
            reports_from_open311(raw, broken)


def test_credentials_are_removed_from_the_body_every_other_byte_kept() -> None:
    from intake.domain.feeds.open311.record import without_credentials

    body = b"service_code=001&api_key=s3cret&lat=32.39&api%5Fkey=x&api+key=y&description=%E8%B7%AF"
    assert without_credentials(body) == b"service_code=001&lat=32.39&api+key=y&description=%E8%B7%AF"
    untouched = b"service_code=001&lat=32.39"
    assert without_credentials(untouched) is untouched
