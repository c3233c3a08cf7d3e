from datetime import UTC, datetime, timedelta

import pytest
from support.shared import CONFORMANCE

from intake.domain.errors import Rejected
from intake.domain.feeds.cap.alert import (
    TOLERANCE_VERY_LIKELY,
    CapCertainty,
    CapMsgType,
    CapReference,
    CapScope,
    CapSeverity,
    CapStatus,
    CapUrgency,
    parse_alert,
)
from intake.domain.feeds.cap.area import CapCircle, CapPoint, CapValue

SAMPLES = CONFORMANCE / "cap"

ALERT = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>YZ-EM-2026-0001</identifier>
  <sender>yjj@yangzhou.gov.cn</sender>
  <sent>2026-07-01T08:00:00+08:00</sent>
  <status>Actual</status>
  <msgType>{msg_type}</msgType>
  <scope>Public</scope>
  {extra}
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>暴雨</event>
    <urgency>Expected</urgency>
    <severity>Moderate</severity>
    <certainty>{certainty}</certainty>
    <area>
      <areaDesc>邗江区</areaDesc>
      <geocode><valueName>GB/T 2260</valueName><value>321003</value></geocode>
    </area>
  </info>
</alert>
"""


def alert_doc(msg_type: str = "Alert", extra: str = "", certainty: str = "Likely") -> bytes:
    return ALERT.format(msg_type=msg_type, extra=extra, certainty=certainty).encode("utf-8")


def reason_of(raw: bytes) -> Rejected:
    with pytest.raises(Rejected) as info:
        parse_alert(raw)
    return info.value


def test_canada_update_with_polygons_and_geocodes() -> None:
    alert = parse_alert((SAMPLES / "canada.cap").read_bytes())
    assert alert.identifier == "2.49.0.1.124.6bddbc91.2012"
    assert alert.sender == "cap@ec.gc.ca"
    assert alert.sent_text == "2012-05-02T23:21:04-00:00"
    assert alert.sent == datetime(2012, 5, 2, 23, 21, 4, tzinfo=UTC)
    assert (alert.status, alert.msg_type, alert.scope) == (
        CapStatus.ACTUAL,
        CapMsgType.UPDATE,
        CapScope.PUBLIC,
    )
    assert alert.source == "Environment Canada - Environnement Canada - Toronto (CWTO)"
    assert alert.codes == ("profile:CAP-CP:0.4", "layer:EC-MSC-SMC:1.0", "layer:SOREM:1.0")
    assert alert.note is None and alert.incidents == () and alert.addresses == ()
    assert [r.identifier for r in alert.references] == [
        "2.49.0.1.124.a3f342a4.2012",
        "2.49.0.1.124.60f31a3a.2012",
    ]
    assert alert.references[1].sent == datetime(2012, 5, 2, 21, 55, 21, tzinfo=UTC)
    assert [i.language for i in alert.infos] == ["en-CA", "fr-CA"]
    english = alert.infos[0]
    assert english.categories == ("Met",) and english.event == "thunderstorm"
    assert english.response_types == ("AllClear",)
    assert (english.urgency, english.severity, english.certainty) == (
        CapUrgency.PAST,
        CapSeverity.MINOR,
        CapCertainty.OBSERVED,
    )
    assert english.event_codes[1] == CapValue("SAME", "SVA")
    assert english.expires == datetime(2012, 5, 3, 0, 20, tzinfo=UTC)
    assert english.contact is None and english.headline == "severe thunderstorm watch"
    assert english.parameters[4] == CapValue("layer:EC-MSC-SMC:1.0:CAP_count", "21699")
    windsor = english.areas[0]
    assert windsor.area_desc == "Windsor - Leamington - Essex County"
    assert len(windsor.polygons) == 1 and len(windsor.polygons[0]) == 17
    assert windsor.polygons[0][0] == CapPoint(42.3481, -82.9314) == windsor.polygons[0][-1]
    assert windsor.geocodes[0] == CapValue("layer:EC-MSC-SMC:1.0:CLC", "041420")
    assert len(windsor.geocodes) == 10 and windsor.circles == ()
    assert alert.infos[1].areas[1].area_desc == "Chatham-Kent - parc Rondeau"
    assert alert.tolerances == ()


def test_canada_geometry_is_lon_lat_and_covers_both_areas() -> None:
    alert = parse_alert((SAMPLES / "canada.cap").read_bytes())
    shape = alert.geometry()
    assert shape is not None
    assert shape.bounds == pytest.approx((-83.1224, 41.7134, -81.5498, 42.651))
    assert shape.contains(alert.infos[0].areas[0].geometry().representative_point())  # type: ignore[union-attr]


def test_australia_circles_and_geocodes() -> None:
    alert = parse_alert((SAMPLES / "australia.cap").read_bytes())
    assert alert.identifier == "tag:www.rfs.nsw.gov.au2011-10-06:40184"
    assert alert.sent == datetime(2011, 10, 5, 13, 4, tzinfo=UTC)
    assert alert.msg_type is CapMsgType.ALERT and alert.references == ()
    assert alert.codes == ("urn:oasis:names:tc:emergency:cap:1.2:profile:CAP-AU:1.0",)
    info = alert.infos[0]
    assert info.language == "en-AU" and info.categories == ("Fire", "Met")
    assert info.response_types == ("Evacuate",)
    assert info.effective_text == "2011-10-05T23:04:00+10:00"
    assert info.expires == datetime(2011, 10, 6, 13, 4, tzinfo=UTC)
    assert info.sender_name == "NSW Rural Fire Service"
    assert info.description is not None and info.description.startswith("ALERT LEVEL: Not Applicable<br />")
    assert CapValue("AllocatedResources", "") in info.parameters
    assert info.resources[0].resource_desc == "map" and info.resources[0].mime_type == "text/html"
    area = info.areas[0]
    assert area.circles == (CapCircle(CapPoint(-35.3888, 147.0598), 25.0),)
    assert area.geocodes == (CapValue("http://www.iso.org/iso/country_codes.html", "AU-NSW"),)
    assert alert.infos[1].areas[0].geocodes[0].value == "2642"


def test_taiwan_chinese_text_behind_a_bom() -> None:
    raw = (SAMPLES / "taiwan.cap").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    alert = parse_alert(raw)
    assert alert.identifier == "WRA_ReservoirWarn_201405142010"
    assert alert.sent == datetime(2014, 5, 14, 12, 10, tzinfo=UTC)
    info = alert.infos[0]
    assert info.language == "zh-tw" and info.categories == ("Infra",)
    assert info.event == "水庫洩洪" and info.headline == "明德水庫:洩洪中"
    assert info.sender_name == "水利署" and info.instruction == "請沿岸附近民眾注意。"
    assert CapValue("alert_color", "紅色") in info.parameters
    area = info.areas[0]
    assert area.area_desc == "苗栗縣頭屋鄉"
    assert area.geocodes == (CapValue("Taiwan_Geocode_100", "1000512"),)
    assert area.geometry() is None and alert.geometry() is None


def test_invalid_sample_names_the_missing_scope() -> None:
    error = reason_of((SAMPLES / "invalid.cap").read_bytes())
    assert error.reason == "cap.schema"  # the CAP 1.2 schema's verdict, with its message
    assert error.detail.startswith("alert/info: ") and "scope" in error.detail


def test_update_and_cancel_cite_the_alert_they_change() -> None:
    original = parse_alert(alert_doc())
    cited = f"<references>{original.sender},{original.identifier},{original.sent_text}</references>"
    for msg_type in ("Update", "Cancel"):
        later = parse_alert(alert_doc(msg_type, cited))
        assert later.msg_type == msg_type
        assert later.references == (
            CapReference(
                "yjj@yangzhou.gov.cn", "YZ-EM-2026-0001", original.sent, "2026-07-01T08:00:00+08:00"
            ),
        )
        assert later.references[0].key == original.key


@pytest.mark.parametrize("msg_type", ["Update", "Cancel"])
def test_update_and_cancel_without_references_are_rejected(msg_type: str) -> None:
    assert reason_of(alert_doc(msg_type)).reason == "cap.references"


@pytest.mark.parametrize(
    "references",
    ["a,b", "a,b,c,d", "a,,2026-07-01T08:00:00+08:00", "a,b,2026-07-01T00:00:00Z", "a,b,yesterday"],
)
def test_malformed_references(references: str) -> None:
    error = reason_of(alert_doc("Update", f"<references>{references}</references>"))
    assert error.reason == "cap.references"


def test_very_likely_is_read_as_likely_and_recorded() -> None:
    alert = parse_alert(alert_doc(certainty="Very Likely"))
    assert alert.infos[0].certainty is CapCertainty.LIKELY
    assert alert.tolerances == (TOLERANCE_VERY_LIKELY,)


@pytest.mark.parametrize(
    ("old", "new", "reason", "named"),
    [
        ("<status>Actual</status>", "<status>actual</status>", "cap.schema", "alert/status"),
        ("<msgType>Alert</msgType>", "<msgType>Notice</msgType>", "cap.schema", "alert/msgType"),
        ("<scope>Public</scope>", "<scope>Private</scope>", "cap.missing_field", "alert/addresses"),
        (
            "<identifier>YZ-EM-2026-0001</identifier>",
            "<identifier>a,b</identifier>",
            "cap.invalid_value",
            "identifier",
        ),
        # Absent required elements, unknown values: the CAP 1.2 schema decides (cap.schema), naming
        # the element where it stopped and, in its message, what it expected there.
        (
            "<sender>yjj@yangzhou.gov.cn</sender>",
            "",
            "cap.schema",
            "alert/sent: Element 'sent': This element is not expected. Expected is ( sender )",
        ),
        ("<sender>yjj@yangzhou.gov.cn</sender>", "<sender></sender>", "cap.missing_field", "alert/sender"),
        ("<category>Met</category>", "<category>Weather</category>", "cap.schema", "alert/info/category"),
        ("<category>Met</category>", "", "cap.schema", "Expected is ( category )"),
        (
            "<event>暴雨</event>",
            "",
            "cap.schema",
            "alert/info/urgency: Element 'urgency': This element is not expected. Expected is one of ( category, event )",
        ),
        ("<event>暴雨</event>", "<event> </event>", "cap.missing_field", "info[0]/event"),
        ("<urgency>Expected</urgency>", "<urgency>Soon</urgency>", "cap.schema", "alert/info/urgency"),
        ("<severity>Moderate</severity>", "", "cap.schema", "Expected is ( severity )"),
        ("<areaDesc>邗江区</areaDesc>", "", "cap.schema", "alert/info/area/geocode"),
        (
            "<sent>2026-07-01T08:00:00+08:00</sent>",
            "<sent>2026-07-01T00:00:00Z</sent>",
            "cap.schema",
            "alert/sent",
        ),
        (
            "<sent>2026-07-01T08:00:00+08:00</sent>",
            "<sent>2026-07-01T08:00:00</sent>",
            "cap.schema",
            "alert/sent",
        ),
        (
            "<sent>2026-07-01T08:00:00+08:00</sent>",
            "<sent>2026-02-30T08:00:00+08:00</sent>",
            "cap.schema",
            "alert/sent: Element 'sent': '2026-02-30T08:00:00+08:00' is not a valid value",
        ),
        (
            "<certainty>Likely</certainty>",
            "<certainty>Likely</certainty><expires>2026-07-02T08:00Z</expires>",
            "cap.schema",
            "alert/info/expires",
        ),
        (
            "<areaDesc>邗江区</areaDesc>",
            "<areaDesc>x</areaDesc><polygon>32.3,119.4 32.4,119.4 32.4,119.5</polygon>",
            "cap.invalid_area",
            "info[0]/area[0]/polygon[0]",
        ),
        (
            "<value>321003</value></geocode>",
            "<value>321003</value></geocode><ceiling>5</ceiling>",
            "cap.invalid_area",
            "ceiling",
        ),
        (
            'xmlns="urn:oasis:names:tc:emergency:cap:1.2"',
            'xmlns="urn:oasis:names:tc:emergency:cap:1.1"',
            "cap.namespace",
            "1.1",
        ),
        (
            "<scope>Public</scope>",
            "<scope>Public</scope><scope>Public</scope>",
            "cap.schema",
            "alert/scope[1]",
        ),
        ("</alert>", "", "cap.xml_malformed", "line 23, column 0: no element found"),
    ],
)
def test_violations_are_named(old: str, new: str, reason: str, named: str) -> None:
    raw = alert_doc().decode("utf-8")
    assert old in raw
    error = reason_of(raw.replace(old, new, 1).encode("utf-8"))
    assert (error.reason, named in error.detail) == (reason, True), error.detail


def test_times_keep_the_text_and_convert_to_utc() -> None:
    extra = "<effective>2026-07-01T09:30:00+08:00</effective><onset>2026-06-30T23:00:00-05:00</onset>"
    raw = (
        alert_doc()
        .replace(b"<certainty>Likely</certainty>", b"<certainty>Likely</certainty>" + extra.encode())
        .replace(b"<language>zh-CN</language>", b"")
    )
    info = parse_alert(raw).infos[0]
    assert info.language == "en-US"  # the CAP default when language is absent
    assert info.effective == datetime(2026, 7, 1, 1, 30, tzinfo=UTC)
    assert info.onset == datetime(2026, 7, 1, 4, 0, tzinfo=UTC)
    assert info.onset is not None and info.onset.utcoffset() == timedelta(0)
    assert info.onset_text == "2026-06-30T23:00:00-05:00"


def test_most_severe_info_ranks_severity_then_urgency() -> None:
    second = (
        "<info><category>Geo</category><event>地震</event><urgency>Immediate</urgency>"
        "<severity>Severe</severity><certainty>Observed</certainty></info>"
    )
    alert = parse_alert(alert_doc().replace(b"</alert>", second.encode() + b"</alert>"))
    chosen = alert.most_severe_info()
    assert chosen is not None and chosen.event == "地震"
    assert parse_alert(alert_doc().split(b"<info>")[0] + b"</alert>").most_severe_info() is None


def test_addresses_and_incidents_keep_quoted_items_whole() -> None:
    extra = '<incidents>flood-7 "river bank breach"</incidents>'
    alert = parse_alert(alert_doc(extra=extra))
    assert alert.incidents == ("flood-7", "river bank breach")
