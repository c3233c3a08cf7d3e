"""Hostile and arbitrary input: whatever arrives, parse_alert answers with Rejected or an alert."""

import builtins
import socket
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.shared import CONFORMANCE

from intake.domain.errors import Rejected
from intake.domain.feeds.cap.alert import MAX_ALERT_BYTES, CapAlert, parse_alert

SAMPLES = CONFORMANCE / "cap"
CANADA = (SAMPLES / "canada.cap").read_bytes()
ALERT_BODY = (
    '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>x</identifier><sender>s</sender>'
    "<sent>2026-07-01T08:00:00+08:00</sent><status>Actual</status><msgType>Alert</msgType>"
    "<scope>Public</scope><info><category>Met</category><event>&e;</event><urgency>Past</urgency>"
    "<severity>Minor</severity><certainty>Observed</certainty></info></alert>"
)


def rejection(raw: bytes, **kwargs: int) -> Rejected:
    with pytest.raises(Rejected) as info:
        parse_alert(raw, **kwargs)
    return info.value


@contextmanager
def no_files_or_sockets() -> Iterator[list[str]]:
    """Make opening a file or connecting a socket fail loudly, and record every attempt."""
    attempts: list[str] = []

    def refuse_open(*args: Any, **kwargs: Any) -> Any:
        attempts.append(f"open{args!r}")
        raise PermissionError("no file may be opened while parsing")

    def refuse_connect(self: socket.socket, address: Any) -> None:
        attempts.append(f"connect({address!r})")
        raise PermissionError("no socket may connect while parsing")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builtins, "open", refuse_open)
        patch.setattr(socket.socket, "connect", refuse_connect)
        yield attempts


def test_the_guard_really_blocks_files_and_sockets() -> None:
    with no_files_or_sockets() as attempts:
        with pytest.raises(PermissionError):
            open("/etc/hostname")  # noqa: SIM115
        with socket.socket() as sock, pytest.raises(PermissionError):
            sock.connect(("127.0.0.1", 9))
    assert len(attempts) == 2


def test_xxe_sample_is_refused_without_touching_files_or_network() -> None:
    raw = (SAMPLES / "xee.cap").read_bytes()
    with no_files_or_sockets() as attempts, pytest.raises(Rejected) as info:
        parse_alert(raw)
    assert attempts == []
    assert info.value.reason == "cap.forbidden_xml"
    assert "DOCTYPE alert" in info.value.detail
    assert "http://localhost:8080/payload1.dtd" in info.value.detail


def test_an_internal_dtd_alone_is_refused() -> None:
    raw = b'<?xml version="1.0"?><!DOCTYPE alert [<!ELEMENT alert ANY>]>' + CANADA.split(b"?>", 1)[1]
    assert rejection(raw).reason == "cap.forbidden_xml"


def test_an_undeclared_entity_reference_is_malformed() -> None:
    error = rejection(ALERT_BODY.encode())
    assert error.reason == "cap.xml_malformed"
    assert "undefined entity" in error.detail


def peak_bytes_while_refusing(raw: bytes) -> tuple[Rejected, int]:
    tracemalloc.start()
    try:
        error = rejection(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return error, peak


def test_billion_laughs_is_refused_before_any_expansion() -> None:
    entities = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)]
    raw = f'<?xml version="1.0"?><!DOCTYPE alert [{"".join(entities)}<!ENTITY e "&lol9;">]>{ALERT_BODY}'
    # Fully expanded, &e; is 3 * 10**9 characters.
    error, peak = peak_bytes_while_refusing(raw.encode())
    assert error.reason == "cap.forbidden_xml"
    assert peak < 1_000_000


def test_quadratic_blowup_is_refused_before_any_expansion() -> None:
    body = ALERT_BODY.replace("&e;", "&e;" * 40_000)
    raw = f'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY e "{"x" * 50_000}">]>{body}'.encode()
    assert len(raw) < MAX_ALERT_BYTES  # within the size limit: only the DTD refusal stops it
    # Fully expanded, the event text is 2 * 10**9 characters.
    error, peak = peak_bytes_while_refusing(raw)
    assert error.reason == "cap.forbidden_xml"
    assert peak < 4 * len(raw)


def test_a_huge_document_is_refused_by_size_before_parsing() -> None:
    raw = b"<" * (MAX_ALERT_BYTES + 1)  # malformed too, but size is checked first
    error = rejection(raw)
    assert error.reason == "cap.too_large"
    assert str(MAX_ALERT_BYTES) in error.detail
    assert rejection(CANADA, max_bytes=len(CANADA) - 1).reason == "cap.too_large"
    assert isinstance(parse_alert(CANADA, max_bytes=len(CANADA)), CapAlert)


def test_legacy_multibyte_encodings_are_refused_by_name() -> None:
    raw = CANADA.replace(b'encoding="UTF-8"', b'encoding="GBK"')
    error = rejection(raw)
    assert error.reason == "cap.encoding"


def test_utf16_documents_are_read() -> None:
    text = CANADA.decode("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"')
    assert parse_alert(text.encode("utf-16")).identifier == "2.49.0.1.124.6bddbc91.2012"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_only_ever_raise_rejected(raw: bytes) -> None:
    try:
        parse_alert(raw)
    except Rejected as error:
        assert error.reason.startswith("cap.")


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(CANADA) - 1), st.binary(min_size=1, max_size=8), st.booleans())
def test_damaged_real_alerts_only_ever_raise_rejected(at: int, junk: bytes, truncate: bool) -> None:
    raw = CANADA[:at] if truncate else CANADA[:at] + junk + CANADA[at + len(junk) :]
    try:
        parse_alert(raw)
    except Rejected as error:
        assert error.reason.startswith("cap.")


FIELDS = (
    "identifier",
    "sent",
    "status",
    "references",
    "category",
    "certainty",
    "polygon",
    "geocode",
    "expires",
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FIELDS), st.text(max_size=80))
def test_any_text_in_any_field_only_ever_raises_rejected(field: str, text: str) -> None:
    start, end = CANADA.index(f"<{field}>".encode()), CANADA.index(f"</{field}>".encode())
    xml_text = escape("".join(c for c in text if c.isprintable()))
    raw = CANADA[: start + len(field) + 2] + xml_text.encode("utf-8") + CANADA[end:]
    try:
        parse_alert(raw)
    except Rejected as error:
        assert error.reason.startswith("cap.")


# A DTD is refused whatever bytes carry it: a document that is not plainly UTF-8 or ASCII (where the
# characters "<!DOCTYPE" are other bytes) goes to the parser that refuses DTDs itself.
@pytest.mark.parametrize(
    ("declaration", "codec"),
    [
        ('<?xml version="1.0" encoding="UTF-16"?>', "utf-16"),
        ('<?xml version="1.0" encoding="UTF-16LE"?>', "utf-16-le"),
        ('<?xml version="1.0" encoding="ISO-8859-1"?>', "latin-1"),
        ('<?xml version="1.0" encoding="cp1252"?>', "cp1252"),
        ('<?xml version="1.0" encoding="UTF-8"?>', "utf-8"),
        ('<?xml version="1.0"?>', "utf-8"),
        ("", "utf-8"),
    ],
)
def test_billion_laughs_is_refused_in_any_encoding(declaration: str, codec: str) -> None:
    entities = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)]
    text = f'{declaration}<!DOCTYPE alert [{"".join(entities)}<!ENTITY e "&lol9;">]>{ALERT_BODY}'
    error, peak = peak_bytes_while_refusing(text.encode(codec))
    assert error.reason == "cap.forbidden_xml"
    assert "DOCTYPE alert" in error.detail or "entity" in error.detail
    assert peak < 1_000_000


@pytest.mark.parametrize("codec", ["utf-8", "utf-16"])
def test_an_external_entity_is_refused_without_touching_files_or_network(codec: str) -> None:
    body = ALERT_BODY.replace("&e;", "&xxe;")
    text = f'<?xml version="1.0" encoding="{codec.upper()}"?><!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>{body}'
    with no_files_or_sockets() as attempts, pytest.raises(Rejected) as info:
        parse_alert(text.encode(codec))
    assert attempts == []
    assert info.value.reason == "cap.forbidden_xml"
    assert "DOCTYPE alert" in info.value.detail


def test_a_doctype_after_a_misleading_declaration_is_still_refused() -> None:
    # The declaration's own quotes hide nothing: the DTD that follows is refused.
    text = f'<?xml version="1.0" encoding="UTF-8" standalone="no"?><!DOCTYPE alert SYSTEM "http://127.0.0.1:9/a.dtd">{ALERT_BODY}'
    assert rejection(text.encode()).reason == "cap.forbidden_xml"
