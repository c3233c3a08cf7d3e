"""Where the project lives, and where its caches and run-time state go (never tracked)."""

from __future__ import annotations

import os
import socket
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
