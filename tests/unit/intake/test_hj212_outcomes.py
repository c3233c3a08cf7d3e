"""The HJ 212 parser's outcomes pinned: 480 packets (mutated valid ones, random heads and CP bodies
with their case variants and 2005/2017 code clashes, broken framings, arbitrary bytes), each with
the packet it parses to or its refusal, reason and words, as the parser gave them when they were
recorded. A faster parser must give every one of them exactly; a change of behaviour shows here
as a diff, to be judged against contracts/legacy/hj212.md and recorded anew on purpose."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from intake.domain.errors import Rejected
from intake.domain.feeds.hj212.packet import parse_packet

CORPUS = Path(__file__).parent / "data" / "hj212_outcomes.jsonl"


def _rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="ascii").splitlines() if line]


def _outcome(raw: bytes) -> dict[str, Any]:
    try:
        p = parse_packet(raw)
    except Rejected as exc:
        return {"refused": [exc.reason, exc.detail]}
    return {
        "packet": {
            "qn": p.qn,
            "st": p.st,
            "cn": p.cn,
            "pw": p.pw,
            "mn": p.mn,
            "flag": p.flag,
            "pnum": p.pnum,
            "pno": p.pno,
            "edition": p.edition,
            "data_time_text": p.data_time_text,
            "cp_data_time": None if p.cp_data_time is None else p.cp_data_time.isoformat(),
            # as lists of pairs: the order items, fields and parameters were sent in is kept
            "cp_items": [[code, [list(f) for f in fields.items()]] for code, fields in p.cp_items.items()],
            "cp_params": [list(kv) for kv in p.cp_params.items()],
            "original_codes": [list(kv) for kv in p.original_codes.items()],
            "tolerances": list(p.tolerances),
        }
    }


def test_the_corpus_holds_packets_and_refusals_of_every_stage() -> None:
    rows = _rows()
    reasons = {row["refused"][0] for row in rows if "refused" in row}
    assert len(rows) == 480 and sum("packet" in row for row in rows) >= 150
    assert {"hj212.framing", "hj212.encoding", "hj212.crc_mismatch", "hj212.segment", "hj212.cp"} <= reasons


@pytest.mark.parametrize("row", _rows(), ids=lambda row: row["raw"][:24])
def test_each_packet_parses_or_is_refused_as_recorded(row: dict[str, Any]) -> None:
    expected = {k: v for k, v in row.items() if k != "raw"}
    assert _outcome(base64.b64decode(row["raw"])) == expected
