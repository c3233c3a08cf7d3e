"""The feed checker: run records through exactly the intake code the service runs, without Kafka.

    python -m intake.check --feed cap alert.xml [more.xml ...]
    python -m intake.check --feed hj212 packets.txt          # one packet per line
    python -m intake.check --feed open311 request.form       # one POST requests body per file
    cat record.json | python -m intake.check --feed party -
    python -m intake.check --feed hj212 --summary day.txt    # counts by outcome and reason only

For every record it prints one JSON line: `ok` with the normalized case event(s) (or, for none, the
reason: `no case: status Test`, `no case: no finding`, `no case: duplicate`), or `rejected` /
`quarantined` with the precise reason; and `inside_city`: true or false where the record was placed,
null where nothing is known of its place. Parsing never depends on the place: a valid alert from
another country parses (`parsed: true`) and is then refused with its own reason,
`place.outside_city`. A file that cannot be read gives one line with `status: "error"`; the other
files are still checked. Exit status: 0 when every record was accepted, 1 when one was refused,
2 when a file could not be read, 3 when the reference city is not installed. Places are judged
against the reference city, the grid registry's seed: the checker reads it from the registry's package,
`onegrid-intake[check]`, an extra so that the intake service itself ships without another service's
code (the workspace's `.venv` has it).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np

from intake.domain.crosswalk import Crosswalk
from intake.domain.errors import IntakeError, Quarantined
from intake.domain.feeds.hj212.packet import parse_packet
from intake.domain.feeds.open311.record import reports_from_open311
from intake.domain.normalize import Provenance
from intake.domain.placement import Placement, from_chain
from intake.domain.process import Inbound, Intake, Outcome
from intake.domain.report import Report
from intake.domain.severity import Severity
from intake.geography import ViewGeography

FEEDS = ("hj212", "cap", "safety", "party", "open311", "patrol")
LINE_FEEDS = {"hj212"}
BATCH = 500  # records per intake batch: a day's capture is checked in bounded memory
_PARSERS = ("cap", "hj212", "safety", "party", "open311", "coords", "time")
EXIT_OK, EXIT_REFUSED, EXIT_UNREADABLE, EXIT_NO_REGISTRY = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class Unreadable:
    """An input that could not be read at all (missing file, no permission, a directory)."""

    source: str
    error: str


def _records(feed: str, sources: list[str]) -> Iterator[tuple[str, bytes] | Unreadable]:
    for src in sources:
        try:
            data = sys.stdin.buffer.read() if src == "-" else Path(src).read_bytes()
        except OSError as e:
            yield Unreadable(src, f"cannot read {src}: {e.strerror or e}")
            continue
        if feed in LINE_FEEDS:
            for n, line in enumerate(data.splitlines(), 1):
                if line.strip() and not line.startswith(b"# "):  # HJ 212 packets start with "##"
                    yield f"{src}:{n}", line.strip() + b"\r\n"
        else:
            yield src, data


def _open311(inbound: Inbound) -> list[Report]:
    """As the Open311 API would hand the body on: with a request id and the time it was received."""
    headers = {
        "open311_service_request_id": str(uuid.uuid5(uuid.NAMESPACE_URL, inbound.value.hex())),
        "open311_received_at": inbound.provenance.received_at.isoformat(),
    }
    return reports_from_open311(inbound.value, headers | inbound.headers)


class NoReferenceCity(Exception):
    """The grid registry's package is not installed: intake was installed without its `check` extra."""


def reference_geography() -> ViewGeography:
    """The reference city from the grid registry's package, imported here and only here: the service
    never needs it, so it is an optional extra rather than a dependency of intake."""
    try:
        from grid_registry.reference import reference_view
    except ModuleNotFoundError as e:
        raise NoReferenceCity(
            "the feed checker judges places against the grid registry's reference city, and "
            f"{e.name or 'grid_registry'} is not installed: install onegrid-intake[check]"
        ) from e
    return ViewGeography(reference_view())


def checker_intake() -> Intake:
    return Intake(crosswalk=Crosswalk.load(), geography=reference_geography(), open311=_open311)


def check(
    feed: str, records: list[tuple[str, bytes]], *, intake: Intake | None = None
) -> list[dict[str, object]]:
    intake = intake or checker_intake()
    now = datetime.now(UTC)
    lines: list[dict[str, object]] = []
    for start in range(0, len(records), BATCH):
        chunk = records[start : start + BATCH]
        result = intake.process([Inbound(feed, raw, Provenance(None, None, None, now)) for _, raw in chunk])
        result.apply()
        for (name, raw), out in zip(chunk, result.outcomes, strict=True):
            if feed == "hj212" and out.error is None and out.placement is None:
                out.placement = _station_placement(intake, raw)
            lines.append(_line(feed, name, out))
    return lines


def _station_placement(intake: Intake, raw: bytes) -> Placement | None:
    """A measurement that opened no case was not placed by intake (it had nothing to place); its
    registered station was, and that is where the packet comes from."""
    try:
        station = intake.geography.station(parse_packet(raw).mn)
    except IntakeError:
        return None
    if station is None:
        return None
    chain = intake.geography.locate(np.array([station.lon]), np.array([station.lat]))[0]
    return from_chain(chain, Severity.IV)


def _line(feed: str, name: str, out: Outcome) -> dict[str, object]:
    # The real answer where the record was placed; null where nothing is known of its place.
    inside = out.placement.inside_city if out.placement is not None else None
    line: dict[str, object] = {"input": name}
    if out.error is None:
        events = [msgspec.to_builtins(ev) for ev in out.events]
        line.update(status="ok", parsed=True, inside_city=inside, events=events)
        if not events:
            line["note"] = f"no case: {out.no_case}"
        return line
    reason = out.error.reason
    parsed = not reason.startswith(f"{feed}.") and reason.split(".")[0] not in _PARSERS
    line.update(
        status="quarantined" if isinstance(out.error, Quarantined) else "rejected",
        reason=reason,
        detail=out.error.detail,
        parsed=parsed,
        inside_city=False if reason == "place.outside_city" else inside,
    )
    return line


def _unreadable_line(u: Unreadable) -> dict[str, object]:
    return {"input": u.source, "status": "error", "reason": "input.unreadable", "detail": u.error}


def summary(lines: list[dict[str, object]]) -> dict[str, object]:
    """Counts by outcome (`ok` split into `case` and `no case`), by reason, and by placement."""
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    inside: Counter[str] = Counter()
    for line in lines:
        status = str(line["status"])
        if status == "ok":
            outcomes["ok: case" if line["events"] else "ok: no case"] += 1
            reasons[str(line.get("note") or "case")] += 1
        else:
            outcomes[status] += 1
            reasons[str(line["reason"])] += 1
        if status != "error":
            inside[json.dumps(line["inside_city"])] += 1
    return {
        "records": sum(1 for line in lines if line["status"] != "error"),
        "by_outcome": dict(sorted(outcomes.items())),
        "by_reason": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        "inside_city": dict(sorted(inside.items())),
    }


def run(feed: str, sources: list[str]) -> tuple[list[dict[str, object]], int]:
    """Every record's line (unreadable inputs in their place) and the exit status."""
    items = list(_records(feed, sources))
    readable = [item for item in items if not isinstance(item, Unreadable)]
    checked = iter(check(feed, readable))
    lines = [_unreadable_line(item) if isinstance(item, Unreadable) else next(checked) for item in items]
    if any(line["status"] == "error" for line in lines):
        return lines, EXIT_UNREADABLE
    return lines, EXIT_OK if all(line["status"] == "ok" for line in lines) else EXIT_REFUSED


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m intake.check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--feed", required=True, choices=FEEDS)
    ap.add_argument("--summary", action="store_true", help="print counts by outcome and reason only")
    ap.add_argument("files", nargs="+", help="record files, or - for standard input")
    args = ap.parse_args(argv)
    try:
        lines, status = run(args.feed, args.files)
    except NoReferenceCity as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_NO_REGISTRY
    errors = [line for line in lines if line["status"] == "error"]
    out = [*errors, summary(lines)] if args.summary else lines
    for line in out:
        print(json.dumps(line, ensure_ascii=False, default=str))
    return status


if __name__ == "__main__":
    sys.exit(main())
