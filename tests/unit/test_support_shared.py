"""Unit tests run on a checkout without the workplace's shared/ folder: the modules that need its
conformance files are skipped with the reason, the others run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_modules_needing_shared_are_skipped_with_the_reason_when_it_is_missing(tmp_path: Path) -> None:
    env = {**os.environ, "ONEGRID_SHARED_DIR": str(tmp_path / "absent")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "tests/unit/intake/test_hj212.py",
            "tests/unit/test_support_waiting.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "shared/conformance not found" in out.stdout
    assert "3 passed, 1 skipped" in out.stdout, out.stdout
