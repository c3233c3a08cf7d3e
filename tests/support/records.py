"""Builders of legacy records in their real formats, for tests (and the simulators' shape)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from intake.domain.coords import CoordSystem, from_wgs84
from intake.domain.hj212 import build_packet

BEIJING = timezone(timedelta(hours=8))
# The check point of DOMAIN.md, inside 邗江区.
HOME = (32.3942, 119.4129)


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
) -> bytes:
    sent = sent or datetime(2026, 11, 30, 19, 10, tzinfo=BEIJING)
    references = (
        f"<references>{' '.join(f'yjj@yangzhou.gov.cn,{r},{sent.isoformat()}' for r in refs)}</references>"
        if refs
        else ""
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>yjj@yangzhou.gov.cn</sender>
  <sent>{sent.isoformat()}</sent>
  <status>{status}</status>
  <msgType>{msg_type}</msgType>
  <scope>Public</scope>
  {references}
  <info>
    <language>zh-CN</language>
    <category>{category}</category>
    <event>{event}</event>
    <urgency>{urgency}</urgency>
    <severity>{severity}</severity>
    <certainty>Observed</certainty>
    <headline>{event} 预警</headline>
    <description>测试警报 {identifier}</description>
    <area>
      <areaDesc>邗江区新盛街道</areaDesc>
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
) -> bytes:
    when = when or datetime(2026, 11, 30, 19, 5, tzinfo=BEIJING)
    lat, lon = from_wgs84(wgs[0], wgs[1], CoordSystem.GCJ02)
    t = when.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    rel = f"<GLSJBH>{related}</GLSJBH>" if related else ""
    return f"""<?xml version="1.0" encoding="GBK"?>
<SJXX>
  <SJBH>{source_id}</SJBH>
  <SJLXDM>{code}</SJLXDM>
  <SJDJ>{level}</SJDJ>
  <BT>商铺电动车违规充电起火</BT>
  <MS>楼梯间冒烟，群众报告。</MS>
  <FSSJ>{t}</FSSJ>
  <SBSJ>{t}</SBSJ>
  <FSDZ>扬州市邗江区新盛街道文昌西路</FSDZ>
  <JD>{lon:.7f}</JD>
  <WD>{lat:.7f}</WD>
  <SBR><XM>王芳</XM><LXDH>13805271234</LXDH></SBR>
  <CZZT>处置中</CZZT>{rel}
</SJXX>""".encode("gbk")


def party_diary(
    source_id: str, *, code: str = "MQ05", wgs: tuple[float, float] = HOME, when: datetime | None = None
) -> bytes:
    when = when or datetime(2026, 11, 30, 19, 8, tzinfo=BEIJING)
    lat, lon = from_wgs84(wgs[0], wgs[1], CoordSystem.BD09)
    t = when.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")
    return json.dumps(
        {
            "rjbh": source_id,
            "sjbt": "小区东门冒烟",
            "sjnr": "走访时发现冒烟。",
            "sjlx": code,
            "sbsj": t,
            "fssj": t,
            "jd": round(lon, 7),
            "wd": round(lat, 7),
            "dz": "扬州市邗江区新盛街道",
            "sbr": "陈敏",
            "lxdh": "13952781234",
            "dyzt": "志愿者",
        },
        ensure_ascii=False,
    ).encode()


def hj212_packet(
    mn: str, qn: datetime, values: dict[str, float], *, st: str = "22", cn: str = "2051", flag: str = "N"
) -> bytes:
    q = qn.astimezone(BEIJING)
    items = ";".join(f"{code}-Avg={v},{code}-Flag={flag}" for code, v in values.items())
    segment = (
        f"QN={q.strftime('%Y%m%d%H%M%S')}000;ST={st};CN={cn};PW=123456;MN={mn};Flag=4;"
        f"CP=&&DataTime={q.strftime('%Y%m%d%H%M')}00;{items}&&"
    )
    return build_packet(segment)
