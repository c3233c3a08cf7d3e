"""`python -m bench [--quick]` (`make bench ARGS=--quick`): throughput and latency of the system next
to the physical limit, measured side by side in one run; reports in bench/results/."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.environment import environment
from bench.plan import FULL, QUICK, SCALING, SCALING_BROKERS, SCALING_SMOKE, Plan
from bench.suite import Suite
from onegrid.paths import project_root

SCALED = ("intake", "dispatch", "audit")  # what --scaling measures


async def _run(plan: Plan, workdir: Path, command: str, only: frozenset[str] | None) -> dict[str, Any]:
    started_at = datetime.now(UTC)
    started = time.monotonic()
    async with environment(workdir) as env:
        suite = Suite(plan, env, workdir, only=only)
        try:
            results = await suite.run()
        finally:
            await suite.close()
    head = {
        "mode": plan.name,
        "started_at": started_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "duration_s": round(time.monotonic() - started, 1),
        "command": command,
        "run": suite.ns.run,
    }
    return {"bench": head, **results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, short windows: under two minutes")
    parser.add_argument("--out", type=Path, default=None, help="report directory (default: bench/results)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs of every process)")
    parser.add_argument(
        "--only",
        default=None,
        help=f"comma-separated sections to run (of {', '.join(report.SECTIONS)}); the others are skipped, "
        "and so are the processes only they need",
    )
    parser.add_argument(
        "--rates", default=None, help="comma-separated fixed rates of the latency section (e.g. 1000)"
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="length of each fixed-rate latency window"
    )
    parser.add_argument(
        "--trials", type=int, default=None, help="windows of the highest-sustained-rate search (0: none)"
    )
    parser.add_argument(
        "--scaling",
        nargs="?",
        const=",".join(SCALED),
        default=None,
        metavar="SERVICES",
        help="only the scaling section, on a 3-node cluster: intake, dispatch and audit (or the "
        "comma-separated SERVICES named) with 1, 2 and 4 instances, next to the passthrough (about 25 "
        "minutes); with --quick a tiny smoke run of the same code on the given broker",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="only the intake's CPU µs per record per stage, per feed (no Kafka; bench/profile.py)",
    )
    args = parser.parse_args(argv)
    only = None if args.only is None else frozenset(s.strip() for s in args.only.split(",") if s.strip())
    unknown = sorted((only or frozenset()) - set(report.SECTIONS))
    if unknown:
        parser.error(f"unknown sections: {', '.join(unknown)} (known: {', '.join(report.SECTIONS)})")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    plan = QUICK if args.quick else FULL
    if args.scaling is not None:
        chosen = [x.strip() for x in args.scaling.split(",") if x.strip()]
        if not chosen or set(chosen) - set(SCALED):
            parser.error(f"--scaling takes services of {', '.join(SCALED)}, not {args.scaling!r}")
        plan = dataclasses.replace(
            SCALING_SMOKE if args.quick else SCALING,
            scaling_intake="intake" in chosen,
            scaling_services=tuple(s for s in SCALED if s in chosen and s != "intake"),
        )
        only = frozenset({"scaling"})
        if not os.environ.get("ONEGRID_TEST_KAFKA_BOOTSTRAP"):
            # The bench's own cluster, with the durability of `make up BROKERS=3` for every topic.
            os.environ.setdefault("ONEGRID_BENCH_BROKERS", str(SCALING_BROKERS))
            os.environ.setdefault("ONEGRID_KAFKA_REPLICATION_FACTOR", str(SCALING_BROKERS))
            os.environ.setdefault("ONEGRID_KAFKA_MIN_INSYNC_REPLICAS", "2")
    out = args.out or project_root() / "bench" / "results"
    if args.profile:
        from bench import profile

        result = profile.main(2_000 if args.quick else 5_000)
        out.mkdir(parents=True, exist_ok=True)
        (out / "profile-latest.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        return 0
    if args.rates:
        plan = dataclasses.replace(plan, latency_rates=tuple(int(x) for x in args.rates.split(",")))
    if args.seconds is not None:
        plan = dataclasses.replace(plan, latency_s=args.seconds)
    if args.trials is not None:
        plan = dataclasses.replace(plan, sustained_trials=args.trials)
    workdir = Path(tempfile.mkdtemp(prefix="onegrid-bench-"))
    command = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])
    try:
        results = asyncio.run(_run(plan, workdir, command, only))
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    stamp = results["bench"]["started_at"].replace(":", "").replace("-", "")
    paths = report.write(results, out, stamp)
    for g in results["goals"]:
        print(f"{'✓' if g['met'] else '✗'} {g['goal']}: {g['measured']} {g['unit']} (ratio {g['ratio']})")
    failed = [name for name in report.SECTIONS if "error" in results.get(name, {})]
    scaled = results.get("scaling", {}).get("services", {})
    failed += [f"scaling ({name})" for name, svc in scaled.items() if "error" in svc]
    print(f"reports: {', '.join(str(p) for p in paths[:2])}")
    if failed:
        print(f"sections that failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
