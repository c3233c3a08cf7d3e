"""Where the workplace's shared material lives: `shared/` beside the checkout (as CI lays it out),
or ONEGRID_SHARED_DIR."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    candidates = [os.environ.get("ONEGRID_SHARED_DIR"), ROOT.parent / "shared", "/work/shared"]
    for c in candidates:
        if c and (Path(c) / "conformance").is_dir():
            return Path(c)
    raise FileNotFoundError("shared/conformance not found beside the checkout; set ONEGRID_SHARED_DIR")


CONFORMANCE = shared_dir() / "conformance"
