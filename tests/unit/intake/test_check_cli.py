"""The feed checker as an integrator runs it: `python -m intake.check`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.shared import CONFORMANCE

from intake.check import main

# Our own record of the class: a resident's request as a 12345 app POSTs it (form-encoded).
# Before: quarantined `intake.no_adapter`. Now: ok, one case.reported event in 邗江区.
OPEN311 = (
    "service_code=chengguan.garbage&lat=32.3942&long=119.4129"
    "&description=%E5%9E%83%E5%9C%BE%E6%BB%A1%E6%BA%A2&first_name=%E5%BC%A0&phone=13800000000"
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, object]]]:
    status = main(list(argv))
    out = capsys.readouterr().out
    return status, [json.loads(line) for line in out.splitlines()]


def service_code() -> str:
    from intake.domain.crosswalk import Crosswalk

    return Crosswalk.load().open311_services()[0].service_code


def test_open311_requests_are_checked_with_the_service_adapter(tmp_path: Path, capsys) -> None:
    body = tmp_path / "request.form"
    body.write_text(OPEN311.replace("chengguan.garbage", service_code()), encoding="utf-8")
    status, [line] = run(capsys, "--feed", "open311", str(body))
    assert (status, line["status"], line["inside_city"]) == (0, "ok", True), line
    [event] = line["events"]  # type: ignore[misc]
    assert event["event_type"] == "case.reported" and event["division"]["district"] == "321003"


def test_an_unknown_service_code_is_quarantined_with_its_reason(tmp_path: Path, capsys) -> None:
    body = tmp_path / "request.form"
    body.write_text(OPEN311.replace("chengguan.garbage", "no.such.service"), encoding="utf-8")
    status, [line] = run(capsys, "--feed", "open311", str(body))
    assert (
        status == 1
        and line["status"] in ("quarantined", "rejected")
        and line["reason"] != "intake.no_adapter"
    )


def test_a_missing_file_is_one_error_line_and_exit_2_after_the_others(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "absent.cap"
    args = ["--feed", "cap", str(missing), str(CONFORMANCE / "cap/canada.cap"), str(tmp_path)]
    status, lines = run(capsys, *args)
    assert status == 2
    assert [line["input"] for line in lines] == args[2:]
    assert lines[0]["status"] == "error" and lines[0]["reason"] == "input.unreadable"
    assert "absent.cap" in str(lines[0]["detail"]) and "No such file" in str(lines[0]["detail"])
    assert lines[1]["reason"] == "place.outside_city"  # the readable file was still checked
    assert lines[2]["status"] == "error"  # a directory is not a record


def test_no_traceback_on_the_command_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "intake.check", "--feed", "hj212", str(tmp_path / "none.txt")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert json.loads(proc.stdout)["status"] == "error"


def test_a_quarantined_record_of_unknown_place_does_not_claim_inside_city(capsys, tmp_path: Path) -> None:
    # Our own record of the class: a 民情日记 with a type code the crosswalk has no rule for, sent
    # without coordinates or grid. Before: quarantined with inside_city true. Now: null (unknown).
    diary = {
        "rjbh": "MQRJ2026120400007",
        "sjbt": "共享单车乱停放",
        "sjnr": "小区门口共享单车堆放。",
        "sjlx": "MQ12",
        "sbsj": "20261204091502",
        "dz": "扬州市邗江区",
        "sbr": "陈敏",
        "lxdh": "13952781234",
        "dyzt": "志愿者",
    }
    path = tmp_path / "diary.json"
    path.write_text(json.dumps(diary, ensure_ascii=False), encoding="utf-8")
    status, [line] = run(capsys, "--feed", "party", str(path))
    assert (status, line["status"], line["reason"]) == (1, "quarantined", "crosswalk.unmapped_code"), line
    assert line["inside_city"] is None


def test_summary_counts_by_outcome_and_reason(tmp_path: Path, capsys) -> None:
    packets = [row.split("\t")[2] for row in (CONFORMANCE / "hj212/packets.tsv").read_text().splitlines()[1:]]
    day = tmp_path / "day.txt"
    day.write_text("\n".join(packets) + "\n", encoding="ascii")
    status, [summary] = run(capsys, "--feed", "hj212", "--summary", str(day))
    assert status == 1
    assert summary["records"] == 5
    assert summary["by_outcome"] == {"ok: case": 1, "ok: no case": 3, "rejected": 1}
    assert summary["by_reason"] == {"no case: no finding": 3, "case": 1, "hj212.crc_mismatch": 1}
