"""CAP is validated against the OASIS CAP 1.2 schema, on the safely parsed tree (cap.schema)."""

import pytest
from support.shared import CONFORMANCE

from intake.domain.errors import Rejected
from intake.domain.feeds.cap.alert import parse_alert
from intake.domain.feeds.cap.schema import SCHEMA_FILE

SAMPLES = CONFORMANCE / "cap"

# Our own record of the class: a 市应急管理局 alert as a hand-written encoder produced it, valid in every
# value but with <msgType> before <status>. Before: accepted as an Actual alert (the reader looked
# elements up by name). Now: cap.schema naming alert/status.
OURS = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2" xmlns:yz="urn:yangzhou:yjj:cap-ext:1">
  <identifier>YZ-EM-2026-0417</identifier>
  <sender>yjj@yangzhou.gov.cn</sender>
  <sent>2026-07-01T08:00:00+08:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <yz:dispatchNote level="III">市防指</yz:dispatchNote>
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>暴雨</event>
    <urgency>Expected</urgency>
    <severity>Moderate</severity>
    <certainty>Likely</certainty>
    <area>
      <areaDesc>邗江区</areaDesc>
      <geocode><valueName>GB/T 2260</valueName><value>321003</value></geocode>
      <yz:gridHint>321003009</yz:gridHint>
    </area>
  </info>
</alert>
"""


def rejected(doc: str) -> Rejected:
    with pytest.raises(Rejected) as info:
        parse_alert(doc.encode("utf-8"))
    return info.value


def test_our_alert_with_extensions_in_another_namespace_is_valid() -> None:
    alert = parse_alert(OURS.encode("utf-8"))
    assert alert.identifier == "YZ-EM-2026-0417" and alert.infos[0].areas[0].area_desc == "邗江区"


def test_wrong_element_order_is_cap_schema_with_path_and_message() -> None:
    swapped = OURS.replace(
        "<status>Actual</status>\n  <msgType>Alert</msgType>",
        "<msgType>Alert</msgType>\n  <status>Actual</status>",
    )
    error = rejected(swapped)
    assert error.reason == "cap.schema"
    assert error.detail.startswith("alert/msgType: ") and "Expected is ( status )" in error.detail


def test_unknown_element_in_the_cap_namespace_is_cap_schema() -> None:
    error = rejected(
        OURS.replace("<areaDesc>邗江区</areaDesc>", "<areaDesc>邗江区</areaDesc><district>邗江</district>")
    )
    assert error.reason == "cap.schema"
    assert error.detail.startswith("alert/info/area/district: ") and "not expected" in error.detail


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("<severity>Moderate</severity>", "<severity>Orange</severity>", "alert/info/severity"),
        ("<status>Actual</status>", "<status>actual</status>", "alert/status"),
        ("<scope>Public</scope>", "<scope>Internal</scope>", "alert/scope"),
    ],
)
def test_value_outside_an_enumeration_is_cap_schema(old: str, new: str, path: str) -> None:
    error = rejected(OURS.replace(old, new))
    assert error.reason == "cap.schema"
    assert error.detail.startswith(f"{path}: ") and "enumeration" in error.detail


def test_second_info_is_named_with_its_index() -> None:
    info = OURS[OURS.index("  <info>") : OURS.index("</info>") + len("</info>\n")]
    doc = OURS.replace(info, info + info.replace("<urgency>Expected</urgency>", "<urgency>Soon</urgency>"))
    assert rejected(doc).detail.startswith("alert/info[1]/urgency: ")


@pytest.mark.parametrize("name", ["canada.cap", "australia.cap", "taiwan.cap"])
def test_the_real_valid_samples_pass_the_schema(name: str) -> None:
    parse_alert((SAMPLES / name).read_bytes())


def test_the_real_invalid_sample_fails_the_schema() -> None:
    with pytest.raises(Rejected) as info:
        parse_alert((SAMPLES / "invalid.cap").read_bytes())
    assert info.value.reason == "cap.schema" and "scope" in info.value.detail


def test_the_xxe_sample_is_refused_by_the_safe_parser_before_any_validation() -> None:
    with pytest.raises(Rejected) as info:
        parse_alert((SAMPLES / "xee.cap").read_bytes())
    assert info.value.reason == "cap.forbidden_xml"


def test_the_shipped_schema_is_the_oasis_file_unchanged() -> None:
    from importlib import resources

    shipped = resources.files("intake.data").joinpath(SCHEMA_FILE).read_bytes()
    assert shipped == (SAMPLES / "CAP-v1.2.xsd").read_bytes()


XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
SIG = '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/></ds:Signature>'
ROOT = '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2" xmlns:yz="urn:yangzhou:yjj:cap-ext:1">'
# What the schema may read differently on the document as parsed and on the copy of its CAP parts.
VARIANTS = {
    "extension outside the CAP namespace": OURS,
    "order": OURS.replace(
        "<status>Actual</status>\n  <msgType>Alert</msgType>",
        "<msgType>Alert</msgType>\n  <status>Actual</status>",
    ),
    "Very Likely": OURS.replace("<certainty>Likely</certainty>", "<certainty>Very Likely</certainty>"),
    "unknown word": OURS.replace("<certainty>Likely</certainty>", "<certainty>Sure</certainty>"),
    "signature": OURS.replace("</info>\n</alert>", f"</info>\n{SIG}</alert>"),
    "signature misplaced": OURS.replace("<scope>Public</scope>", f"<scope>Public</scope>{SIG}"),
    "xml:lang": OURS.replace(ROOT, ROOT[:-1] + ' xml:lang="zh">'),
    "xsi:type": OURS.replace(ROOT, ROOT[:-1] + f" {XSI}>")
    .replace("<note>", "<note>")
    .replace(
        "<event>暴雨</event>",
        '<event xsi:type="xs:token" xmlns:xs="http://www.w3.org/2001/XMLSchema">暴雨</event>',
    ),
    "xsi:nil": OURS.replace(ROOT, ROOT[:-1] + f" {XSI}>").replace(
        "<event>暴雨</event>", '<event xsi:nil="true"/>'
    ),
    "undeclared default": OURS.replace("<event>暴雨</event>", '<event xmlns="">暴雨</event>'),
    "spaced declaration": OURS.replace('<alert xmlns="', '<alert xmlns = "'),
    "unqualified attribute": OURS.replace("<scope>", '<scope kind="x">'),
    "text between elements": OURS.replace("<scope>Public</scope>", "<scope>Public</scope>stray"),
    "comment": OURS.replace("<scope>Public</scope>", "<scope>Public</scope><!-- c -->"),
}


@pytest.mark.parametrize(
    "doc",
    [pytest.param(v.encode(), id=k) for k, v in VARIANTS.items()]
    + [pytest.param(OURS.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"), id="utf-16")]
    + [
        pytest.param((SAMPLES / n).read_bytes(), id=n)
        for n in ("canada.cap", "australia.cap", "taiwan.cap", "invalid.cap")
    ],
)
def test_the_verdict_on_the_document_is_the_verdict_on_the_copy(doc: bytes) -> None:
    # The schema reads the document as libxml2 parsed it first, a copy of its CAP parts only when
    # that is refused: the copy's verdict and message must be the verdict, whatever the document holds.
    from intake.domain.feeds.cap.schema import validate
    from intake.domain.xmldoc import parse_document

    def verdict(**document: bytes) -> str:
        try:
            validate(parse_document(doc), certainty_aliases={"Very Likely": "Likely"}, **document)
        except Rejected as error:
            return str(error)
        return "valid"

    assert verdict(document=doc) == verdict()
