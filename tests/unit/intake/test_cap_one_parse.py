"""A CAP alert is parsed once, by libxml2, when its bytes can be taken as plain XML (UTF-8 or ASCII,
visibly no DTD); otherwise by the safe parser (expat, refusing DTDs). Both ways must read every
document alike: the same alert, or the same refusal with the same words."""

from __future__ import annotations

import pytest
from support.records import cap_alert
from support.shared import CONFORMANCE

from intake.domain.errors import IntakeError
from intake.domain.feeds.cap import alert as cap

SAMPLE = cap_alert("CN-YZ-2026-0001").decode()


def outcome(raw: bytes, *, plain: bool, monkeypatch: pytest.MonkeyPatch) -> object:
    """The alert, or the refusal's kind and words; `plain=False`: as if libxml2 took no document."""
    with monkeypatch.context() as m:
        if not plain:
            m.setattr(cap, "parse_plain", lambda _document: None)
        try:
            return cap.parse_alert(raw)
        except IntakeError as error:
            return (type(error).__name__, str(error))


def same_either_way(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    assert outcome(raw, plain=True, monkeypatch=monkeypatch) == outcome(
        raw, plain=False, monkeypatch=monkeypatch
    )


EVENT = "<event>Fire</event>"
EDGES = {
    "as sent": SAMPLE,
    "comment inside a text": SAMPLE.replace(EVENT, "<event>Fi<!-- x -->re</event>"),
    "processing instruction inside a text": SAMPLE.replace(EVENT, "<event>Fi<?pi x?>re</event>"),
    "CDATA": SAMPLE.replace(EVENT, "<event><![CDATA[Fi]]>re</event>"),
    "entity and character references": SAMPLE.replace(EVENT, "<event>F&#x69;re &amp; &lt;smoke&gt;</event>"),
    "undefined entity": SAMPLE.replace(EVENT, "<event>&nbsp;Fire</event>"),
    "comment before the root": SAMPLE.replace("<alert", "<!-- sent by hand -->\n<alert", 1),
    "XML 1.1": SAMPLE.replace('version="1.0"', 'version="1.1"', 1),
    "standalone": SAMPLE.replace('encoding="UTF-8"', 'encoding="UTF-8" standalone="yes"', 1),
    "no declaration": SAMPLE[SAMPLE.index("<alert") :],
    "ASCII": SAMPLE.replace('encoding="UTF-8"', 'encoding="US-ASCII"', 1),
    "Latin-1 declared": SAMPLE.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"', 1),
    "junk after the root": SAMPLE + "<alert/>",
    "unclosed": SAMPLE[: SAMPLE.index("</info>")],
    "DOCTYPE": SAMPLE.replace("<alert", '<!DOCTYPE alert [<!ENTITY x "y">]>\n<alert', 1),
    "carriage returns": SAMPLE.replace("\n", "\r\n"),
    "tab in a text": SAMPLE.replace(EVENT, "<event>\tFire\t</event>"),
    "attribute": SAMPLE.replace("<scope>", '<scope kind="x">'),
}


@pytest.mark.parametrize("raw", [pytest.param(v.encode(), id=k) for k, v in EDGES.items()])
def test_edges_read_alike_either_way(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    same_either_way(raw, monkeypatch)


def test_a_comment_inside_a_text_is_left_out_as_the_standard_parser_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alert = outcome(EDGES["comment inside a text"].encode(), plain=True, monkeypatch=monkeypatch)
    assert isinstance(alert, cap.CapAlert) and alert.infos[0].event == "Fire"


@pytest.mark.parametrize("name", ["canada.cap", "australia.cap", "taiwan.cap", "invalid.cap", "xee.cap"])
def test_the_real_samples_read_alike_either_way(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    same_either_way((CONFORMANCE / "cap" / name).read_bytes(), monkeypatch)
