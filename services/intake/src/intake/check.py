"""The feed checker: run records through exactly the intake code the service runs, without Kafka.

    python -m intake.check --feed cap alert.xml [more.xml ...]
    python -m intake.check --feed hj212 packets.txt          # one packet per line
    cat record.json | python -m intake.check --feed party -

For every record it prints one JSON line: `ok` with the normalized case event(s), or `rejected` /
`quarantined` with the precise reason; and whether the place lies inside the city. Parsing never
depends on the place: a valid alert from another country parses (`parsed: true`) and is then refused
with its own reason, `place.outside_city`. Exit status: 0 when every record was accepted, 1 otherwise.
Places are judged against the reference city (the registry's seed).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from intake.domain.crosswalk import Crosswalk
from intake.domain.errors import Quarantined
from intake.domain.normalize import Provenance
from intake.domain.process import Inbound, Intake
from intake.geography import ViewGeography, reference_view

FEEDS = ("hj212", "cap", "safety", "party", "open311")
LINE_FEEDS = {"hj212"}


def _records(feed: str, sources: list[str]) -> Iterator[tuple[str, bytes]]:
    for src in sources:
        data = sys.stdin.buffer.read() if src == "-" else Path(src).read_bytes()
        if feed in LINE_FEEDS:
            for n, line in enumerate(data.splitlines(), 1):
                if line.strip() and not line.startswith(b"# "):  # HJ 212 packets start with "##"
                    yield f"{src}:{n}", line.strip() + b"\r\n"
        else:
            yield src, data


def check(
    feed: str, records: list[tuple[str, bytes]], *, intake: Intake | None = None
) -> list[dict[str, object]]:
    intake = intake or Intake(crosswalk=Crosswalk.load(), geography=ViewGeography(reference_view()))
    now = datetime.now(UTC)
    batch = [Inbound(feed, raw, Provenance(None, None, None, now)) for _, raw in records]
    result = intake.process(batch)
    result.apply()
    lines: list[dict[str, object]] = []
    for (name, _), out in zip(records, result.outcomes, strict=True):
        line: dict[str, object] = {"input": name}
        if out.error is None:
            events = [msgspec.to_builtins(ev) for ev in out.events]
            line.update(status="ok", parsed=True, inside_city=True, events=events)
            if not events:
                line["note"] = (
                    "no case: a measurement within limits, a duplicate, or a non-actual CAP message"
                )
        else:
            kind = "quarantined" if isinstance(out.error, Quarantined) else "rejected"
            parsed = not out.error.reason.startswith(f"{feed}.") and out.error.reason.split(".")[0] not in (
                "cap",
                "hj212",
                "safety",
                "party",
                "open311",
                "coords",
                "time",
            )
            line.update(
                status=kind,
                reason=out.error.reason,
                detail=out.error.detail,
                parsed=parsed,
                # Where a record could not be read, nothing is known of its place: null.
                inside_city=False if out.error.reason == "place.outside_city" else (True if parsed else None),
            )
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m intake.check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--feed", required=True, choices=FEEDS)
    ap.add_argument("files", nargs="+", help="record files, or - for standard input")
    args = ap.parse_args(argv)
    lines = check(args.feed, list(_records(args.feed, args.files)))
    for line in lines:
        print(json.dumps(line, ensure_ascii=False, default=str))
    return 0 if all(line["status"] == "ok" for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
