"""`python -m bench [--quick]` (`make bench ARGS=--quick`): throughput and latency of the system next
to the physical limit, measured side by side in one run; reports in bench/results/."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.environment import environment
from bench.plan import FULL, QUICK, Plan
from bench.suite import Suite
from onegrid.devstack.paths import project_root


async def _run(plan: Plan, workdir: Path, command: str) -> dict[str, Any]:
    started_at = datetime.now(UTC)
    started = time.monotonic()
    async with environment(workdir) as env:
        suite = Suite(plan, env, workdir)
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    plan = QUICK if args.quick else FULL
    out = args.out or project_root() / "bench" / "results"
    workdir = Path(tempfile.mkdtemp(prefix="onegrid-bench-"))
    command = "python -m bench" + (" --quick" if args.quick else "")
    try:
        results = asyncio.run(_run(plan, workdir, command))
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
    print(f"reports: {', '.join(str(p) for p in paths[:2])}")
    if failed:
        print(f"sections that failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
