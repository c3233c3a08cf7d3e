"""Runs `python -m bench` as `make bench` does, on the test session's broker and database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_bench(
    args: list[str], *, kafka_bootstrap: str, database_url: str, out: Path, timeout_s: float
) -> subprocess.CompletedProcess[str]:
    """The bench with `args`, writing its reports to `out`; fails the test with the bench's stderr
    when it does not exit 0."""
    env = {**os.environ, "ONEGRID_TEST_KAFKA_BOOTSTRAP": kafka_bootstrap, "DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args, "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    return done
