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


def private_dir(path: Path) -> Path:
    """`path` created if missing and readable by its owner only (also when it existed before)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def private_file(path: Path, text: str) -> Path:
    """Write `text` to `path`, readable by its owner only: the mode is set before the content is
    written, and tightened on a file that existed (`touch(mode=)` leaves an existing file as it is)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    return path
