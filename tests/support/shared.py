"""Where the workplace's shared material lives: `shared/` beside the checkout (as CI lays it out),
or ONEGRID_SHARED_DIR (then only there).

The conformance files are not in the repository; a test module importing `CONFORMANCE` on a checkout
without them is skipped, with the reason, instead of failing to import."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MISSING = "shared/conformance not found beside the checkout; set ONEGRID_SHARED_DIR to run these tests"


def shared_dir() -> Path:
    chosen = os.environ.get("ONEGRID_SHARED_DIR")
    candidates = [chosen] if chosen else [ROOT.parent / "shared", "/work/shared"]
    for c in candidates:
        if c and (Path(c) / "conformance").is_dir():
            return Path(c)
    raise FileNotFoundError(MISSING)


try:
    CONFORMANCE = shared_dir() / "conformance"
except FileNotFoundError:
    # Raised while pytest imports the test module: the whole module is reported as skipped.
    pytest.skip(MISSING, allow_module_level=True)
