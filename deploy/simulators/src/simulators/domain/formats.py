"""Builders of legacy records in their real formats, byte for byte what each network sends.

- HJ 212-2017 packets (`hj212_packet`): `##` + length + segment + CRC (Appendix A) + CRLF; QN and
  DataTime in Beijing local time.
- CAP 1.2 alerts (`cap_alert`): UTF-8 XML, `sent` with its +08:00 offset, a circle area in WGS-84.
- Public-safety events (`safety_event`): GBK XML, local time without offset, GCJ-02 coordinates.
- Party-building diaries (`party_diary`): JSON with pinyin keys, `yyyyMMddHHmmss`, BD-09 coordinates.
- Open311 GeoReport v2 request bodies (`open311_form`): application/x-www-form-urlencoded, WGS-84.

And the faults real feeds have, each refused by intake with a known reason: `with_bad_crc`
(hj212.crc_mismatch) and `truncated_xml` (safety.xml_malformed / cap.xml_malformed).
The contracts are contracts/legacy/*.md; tests check every builder against intake's own parsers.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from intake.domain.coords import CoordSystem, from_wgs84
from intake.domain.feeds.hj212.packet import build_packet

BEIJING = timezone(timedelta(hours=8))
# The check point of DOMAIN.md, inside 邗江区.
HOME = (32.3942, 119.4129)
CAP_SENDER = "yjj@yangzhou.gov.cn"


def cap_alert(
    identifier: str,
    *,
    msg_type: str = "Alert",
    refs: tuple[str, ...] = (),
    category: str = "Fire",
    event: str = "Fire",
    severity: str = "Severe",
    urgency: str = "Immediate",
    centre: tuple[float, float] = HOME,
    radius_km: float = 0.5,
    sent: datetime | None = None,
    status: str = "Actual",
    sender: str = CAP_SENDER,
    headline: str | None = None,
    area_desc: str = "邗江区新盛街道",
) -> bytes:
    """One CAP 1.2 alert; `refs` are identifiers of earlier alerts of the same sender (Update, Cancel)."""
    sent = sent or datetime(2026, 11, 30, 19, 10, tzinfo=BEIJING)
    references = (
        f"<references>{' '.join(f'{sender},{r},{sent.isoformat()}' for r in refs)}</references>"
        if refs
        else ""
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>{sender}</sender>
  <sent>{sent.isoformat()}</sent>
  <status>{status}</status>
  <msgType>{msg_type}</msgType>
  <scope>Public</scope>
  {references}
  <info>
    <language>zh-CN</language>
    <category>{category}</category>
    <event>{escape(event)}</event>
    <urgency>{urgency}</urgency>
    <severity>{severity}</severity>
    <certainty>Observed</certainty>
    <headline>{escape(headline or f"{event} 预警")}</headline>
    <description>测试警报 {identifier}</description>
    <area>
      <areaDesc>{escape(area_desc)}</areaDesc>
      <circle>{centre[0]},{centre[1]} {radius_km}</circle>
    </area>
  </info>
</alert>""".encode()


def safety_event(
    source_id: str,
    *,
    code: str = "0302",
    level: str = "较大",
    wgs: tuple[float, float] = HOME,
    related: str | None = None,
    when: datetime | None = None,
    title: str = "商铺电动车违规充电起火",
    description: str = "楼梯间冒烟，群众报告。",
    address: str = "扬州市邗江区新盛街道文昌西路",
) -> bytes:
    """One 综治 event (事件信息) in GBK; `related` is the SJBH of the event it follows up."""
    when = when or datetime(2026, 11, 30, 19, 5, tzinfo=BEIJING)
    lat, lon = from_wgs84(wgs[0], wgs[1], CoordSystem.GCJ02)
    t = when.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    rel = f"<GLSJBH>{related}</GLSJBH>" if related else ""
    return f"""<?xml version="1.0" encoding="GBK"?>
<SJXX>
  <SJBH>{source_id}</SJBH>
  <SJLXDM>{code}</SJLXDM>
  <SJDJ>{level}</SJDJ>
  <BT>{escape(title)}</BT>
  <MS>{escape(description)}</MS>
  <FSSJ>{t}</FSSJ>
  <SBSJ>{t}</SBSJ>
  <FSDZ>{escape(address)}</FSDZ>
  <JD>{lon:.7f}</JD>
  <WD>{lat:.7f}</WD>
  <SBR><XM>王芳</XM><LXDH>13805271234</LXDH></SBR>
  <CZZT>处置中</CZZT>{rel}
</SJXX>""".encode("gbk")


def party_diary(
    source_id: str,
    *,
    code: str = "MQ05",
    wgs: tuple[float, float] = HOME,
    when: datetime | None = None,
    title: str = "小区东门冒烟",
    content: str = "走访时发现冒烟。",
    address: str = "扬州市邗江区新盛街道",
) -> bytes:
    """One 民情日记 record of the party-building app (BD-09 from the Baidu SDK)."""
    when = when or datetime(2026, 11, 30, 19, 8, tzinfo=BEIJING)
    lat, lon = from_wgs84(wgs[0], wgs[1], CoordSystem.BD09)
    t = when.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")
    return json.dumps(
        {
            "rjbh": source_id,
            "sjbt": title,
            "sjnr": content,
            "sjlx": code,
            "sbsj": t,
            "fssj": t,
            "jd": round(lon, 7),
            "wd": round(lat, 7),
            "dz": address,
            "sbr": "陈敏",
            "lxdh": "13952781234",
            "dyzt": "志愿者",
        },
        ensure_ascii=False,
    ).encode()


def hj212_packet(
    mn: str,
    qn: datetime,
    values: dict[str, float],
    *,
    st: str = "22",
    cn: str = "2051",
    flag: str = "N",
    flags: dict[str, str] | None = None,
) -> bytes:
    """One data packet (minute data by default); `flags` overrides the data flag of single pollutants."""
    q = qn.astimezone(BEIJING)
    per = flags or {}
    items = ";".join(f"{code}-Avg={v},{code}-Flag={per.get(code, flag)}" for code, v in values.items())
    segment = (
        f"QN={q.strftime('%Y%m%d%H%M%S')}000;ST={st};CN={cn};PW=123456;MN={mn};Flag=4;"
        f"CP=&&DataTime={q.strftime('%Y%m%d%H%M')}00;{items}&&"
    )
    return build_packet(segment)


def open311_form(
    service_code: str,
    *,
    wgs: tuple[float, float] | None = HOME,
    description: str = "",
    address: str | None = None,
    first_name: str | None = "李",
    phone: str | None = "13705140000",
) -> bytes:
    """A GeoReport v2 `POST requests` body as an HTML form sends it (UTF-8, percent-encoded)."""
    fields: list[tuple[str, str]] = [("service_code", service_code)]
    if wgs is not None:
        fields += [("lat", f"{wgs[0]:.6f}"), ("long", f"{wgs[1]:.6f}")]
    if address:
        fields.append(("address_string", address))
    if description:
        fields.append(("description", description))
    if first_name:
        fields.append(("first_name", first_name))
    if phone:
        fields.append(("phone", phone))
    return urlencode(fields).encode()


def with_bad_crc(packet: bytes) -> bytes:
    """The packet with its CRC changed (a line fault): intake refuses it as hj212.crc_mismatch."""
    body = packet.rstrip(b"\r\n")
    crc = int(body[-4:], 16) ^ 0x5A5A
    return body[:-4] + f"{crc:04X}".encode() + b"\r\n"


def truncated_xml(document: bytes) -> bytes:
    """An XML document cut before its last closing tag (a gateway that dropped a TCP segment)."""
    return document[: document.rstrip().rfind(b"</")]
