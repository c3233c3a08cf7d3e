"""Non-actual CAP messages are placed truthfully and accounted for as "no case"; areas larger than
the city (national and provincial warnings) are inside it, with the city as the case's area."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from shapely.geometry import shape
from support.shared import CONFORMANCE

from intake.check import check
from intake.domain.crosswalk import Crosswalk
from intake.domain.normalize import Provenance
from intake.domain.process import Inbound, Intake
from intake.geography import ViewGeography

# Our own record of the class: the city's monthly siren test, sent as status Test, placed in Hanjiang.
# Before: `ok`, no event, and `inside_city: true` claimed by default. Now: the same, with the reason
# "no case: status Test" and inside_city the real answer.
ALERT = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{ident}</identifier>
  <sender>{sender}</sender>
  <sent>2026-07-01T08:00:00+08:00</sent>
  <status>{status}</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>暴雨</event>
    <urgency>Expected</urgency>
    <severity>Severe</severity>
    <certainty>Likely</certainty>
    <area>
      <areaDesc>{desc}</areaDesc>
      {shape}
    </area>
  </info>
</alert>
"""
HANJIANG = "<circle>32.3942,119.4129 0.5</circle>"
SHANGHAI = "<circle>31.2304,121.4737 5</circle>"
# 江苏省气象台's province-wide warning: a box around Jiangsu, far larger than Yangzhou.
JIANGSU = "<polygon>30.7,116.3 35.2,116.3 35.2,121.9 30.7,121.9 30.7,116.3</polygon>"
# 中央气象台's national circle: 2,000 km around Beijing.
NATIONAL = "<circle>39.9042,116.4074 2000</circle>"


def alert(status: str = "Actual", area: str = HANJIANG, ident: str = "YZ-T-1", desc: str = "邗江区") -> bytes:
    return ALERT.format(
        ident=ident, sender="yjj@yangzhou.gov.cn", status=status, desc=desc, shape=area
    ).encode()


@pytest.fixture
def intake(reference_view) -> Intake:
    return Intake(crosswalk=Crosswalk.load(), geography=ViewGeography(reference_view))


@pytest.mark.parametrize("status", ["Test", "Exercise", "System", "Draft"])
def test_a_non_actual_alert_inside_the_city_is_no_case_and_inside(intake: Intake, status: str) -> None:
    [line] = check("cap", [("siren-test.xml", alert(status))], intake=intake)
    assert (line["status"], line["events"], line["inside_city"]) == ("ok", [], True)
    assert line["note"] == f"no case: status {status}"


def test_a_non_actual_alert_outside_the_city_says_so_and_is_not_refused(intake: Intake) -> None:
    [line] = check("cap", [("sh.xml", alert("Test", SHANGHAI, desc="上海市"))], intake=intake)
    assert (line["status"], line["inside_city"], line["note"]) == ("ok", False, "no case: status Test")


def test_the_real_australian_alert_as_a_test_is_outside(intake: Intake) -> None:
    raw = (
        (CONFORMANCE / "cap/australia.cap").read_bytes().replace(b"<cap:status>Actual<", b"<cap:status>Test<")
    )
    [line] = check("cap", [("australia-test.cap", raw)], intake=intake)
    assert (line["status"], line["inside_city"], line["note"]) == ("ok", False, "no case: status Test")


def test_the_outcome_carries_the_no_case_reason_and_the_placement(intake: Intake) -> None:
    provenance = Provenance(None, None, None, datetime(2026, 7, 1, tzinfo=UTC))
    [outcome] = intake.process([Inbound("cap", alert("Exercise"), provenance)]).outcomes
    assert outcome.events == [] and outcome.error is None and outcome.no_case == "status Exercise"
    assert outcome.placement is not None and outcome.placement.inside_city is True
    assert outcome.placement.district == "321003"


@pytest.mark.parametrize(("area", "ident"), [(JIANGSU, "JS-1"), (NATIONAL, "CN-1")])
def test_an_area_containing_the_whole_city_is_inside_and_the_case_area_is_the_city(
    intake: Intake, reference_view, area: str, ident: str
) -> None:
    [line] = check("cap", [(ident, alert(area=area, ident=ident, desc="全省"))], intake=intake)
    assert (line["status"], line["inside_city"]) == ("ok", True), line
    [event] = line["events"]
    case_area = shape(event["location"]["area"])
    city = ViewGeography(reference_view).city_area()
    assert city is not None
    assert case_area.symmetric_difference(city).area < 0.01 * city.area  # the city, not the province
    assert event["division"]["tier"] == "city" and event["location"]["inside_city"] is True
