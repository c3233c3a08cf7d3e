"""The answers a data logger waits for (HJ 212-2017 §6.6, system interaction ST=91).

- uploaded data (CN 2xxx, 3020) with the Flag reply bit: `CN=9014` 数据应答 with an empty CP;
- a request (any other command, e.g. 1013 time calibration request) with the reply bit: `CN=9011`
  请求应答 `QnRtn=1` (accepted) then `CN=9012` 执行结果 `ExeRtn=1` (done);
- answers (CN 9xxx) are never answered.
Every answer repeats the packet's QN, PW and MN, so the logger pairs it with what it sent; the Flag
of an answer asks for no answer (bit 0 clear) and keeps the packet's edition bit.
"""

from __future__ import annotations

from intake.domain.feeds.hj212.packet import FLAG_VERSION_2017, Hj212Packet, build_packet

DATA_UPLOAD_CN = frozenset({"3020"})


def is_data_upload(cn: str) -> bool:
    return cn.startswith("2") or cn in DATA_UPLOAD_CN


def replies_for(p: Hj212Packet) -> list[bytes]:
    if not p.reply_wanted or p.cn.startswith("9"):
        return []
    flag = FLAG_VERSION_2017 if p.flag is not None and p.flag & FLAG_VERSION_2017 else 0
    head = (f"QN={p.qn};" if p.qn else "") + "ST=91;CN={cn};" + f"PW={p.pw};MN={p.mn};Flag={flag};"
    if is_data_upload(p.cn):
        return [build_packet(head.format(cn="9014") + "CP=&&&&")]
    return [
        build_packet(head.format(cn="9011") + "CP=&&QnRtn=1&&"),
        build_packet(head.format(cn="9012") + "CP=&&ExeRtn=1&&"),
    ]
