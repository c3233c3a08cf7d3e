"""Bounded fuzzing of the five parsers that take bytes from outside: HJ 212 packets, CAP XML, GBK
safety XML, pinyin-keyed party JSON and Open311 forms. Each must answer every input with a parsed
record or a refusal (`Rejected`/`Quarantined`, i.e. `IntakeError`), never another exception: an
unexpected exception would stop the consumer loop as a poison record instead of dead-lettering it.

Inputs: arbitrary bytes, and valid records (the simulators' builders) with bytes flipped, cut,
duplicated or inserted. `ONEGRID_FUZZ_EXAMPLES` (default 300 per property) bounds the run in
`make test`; raise it for a longer campaign."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.records import cap_alert, hj212_packet, open311_form, party_diary, safety_event

from intake.domain.errors import IntakeError
from intake.domain.feeds.cap.alert import parse_alert
from intake.domain.feeds.hj212.packet import parse_packet
from intake.domain.feeds.open311.record import parse_open311, without_credentials
from intake.domain.feeds.party.record import parse_party
from intake.domain.feeds.safety.record import parse_safety

FUZZ = settings(
    max_examples=int(os.environ.get("ONEGRID_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
WHEN = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def _open311(raw: bytes) -> object:
    return parse_open311(raw, service_request_id="7d1f3a52-0000-4000-8000-000000000001", received_at=WHEN)


def _cap_area(raw: bytes) -> object:
    """The alert and its area, as the geometry worker computes it (bounded in points)."""
    return parse_alert(raw).geometry()


PARSERS: dict[str, tuple[Callable[[bytes], object], bytes]] = {
    "hj212": (parse_packet, hj212_packet("321003A0000001", WHEN, {"a34004": 43.1, "a21026": 12.0})),
    "cap": (parse_alert, cap_alert("CN-YZ-2026-0001")),
    "cap_area": (_cap_area, cap_alert("CN-YZ-2026-0002")),
    "safety": (parse_safety, safety_event("PA" + "2026030108300000" + "0001")),
    "party": (parse_party, party_diary("MQ-2026-000001")),
    "open311": (_open311, open311_form("001", description="路灯不亮")),
}


def total(name: str, raw: bytes) -> None:
    parse, _ = PARSERS[name]
    try:
        parse(raw)
    except IntakeError:
        pass


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "duplicate", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


@pytest.mark.parametrize("name", list(PARSERS))
def test_the_valid_seed_parses(name: str) -> None:
    parse, seed = PARSERS[name]
    parse(seed)


@pytest.mark.parametrize("name", list(PARSERS))
def test_arbitrary_bytes_are_parsed_or_refused(name: str) -> None:
    @FUZZ
    @given(st.binary(max_size=2048))
    def run(raw: bytes) -> None:
        total(name, raw)

    run()


@pytest.mark.parametrize("name", list(PARSERS))
def test_mutated_records_are_parsed_or_refused(name: str) -> None:
    @FUZZ
    @given(mutated(PARSERS[name][1]))
    def run(raw: bytes) -> None:
        total(name, raw)

    run()


def test_credentials_never_survive_into_the_published_body() -> None:
    from urllib.parse import parse_qsl, urlencode

    names = st.sampled_from(["api_key", "service_code", "lat", "description", "x"])

    @FUZZ
    @given(st.lists(st.tuples(names, st.text(max_size=20)), max_size=8), st.binary(max_size=64))
    def run(fields: list[tuple[str, str]], junk: bytes) -> None:
        body = urlencode(fields).encode()
        published = without_credentials(body)
        assert [kv for kv in parse_qsl(published.decode()) if kv[0] == "api_key"] == []
        assert parse_qsl(published.decode()) == [kv for kv in parse_qsl(body.decode()) if kv[0] != "api_key"]
        without_credentials(junk + body)  # total on any bytes

    run()


@FUZZ
@given(mutated(PARSERS["cap"][1]))
def test_cap_reads_a_mutated_alert_alike_parsed_once_by_libxml2_or_by_the_safe_parser(raw: bytes) -> None:
    # tests/unit/intake/test_cap_one_parse.py: the same alert, or the same refusal in the same words.
    from intake.domain.feeds.cap import alert as cap

    def outcome() -> object:
        try:
            return cap.parse_alert(raw)
        except IntakeError as error:
            return (type(error).__name__, str(error))

    plain = outcome()
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cap, "parse_plain", lambda _document: None)
        assert outcome() == plain
