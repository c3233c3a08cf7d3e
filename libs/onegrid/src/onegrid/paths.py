"""Where the checkout lives, and where its caches and run-time state go (never tracked).

Outside the local stack (`devstack`, in deploy/local) because the runtime reads it too: a development
service's token secret and API keys live in the run folder (`onegrid.auth`), and the runtime must
not import the stack that starts brokers and databases.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout's root: ONEGRID_ROOT, else the nearest parent holding `deploy/local`."""
    env = os.environ.get("ONEGRID_ROOT")
    if env:
        return Path(env).resolve()
    for p in [Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents]:
        if (p / "deploy" / "local").is_dir() and (p / "Makefile").exists():
            return p
    raise RuntimeError("cannot find the project root (a folder with deploy/local and a Makefile)")


def cache_dir() -> Path:
    return Path(os.environ.get("ONEGRID_CACHE", project_root() / ".cache"))


def run_dir() -> Path:
    d = Path(os.environ.get("ONEGRID_RUN", project_root() / ".run"))
    d.mkdir(parents=True, exist_ok=True)
    return d
