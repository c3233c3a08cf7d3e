"""The local stack's ports and private files. Where the checkout, its caches and its run-time state
live is `onegrid.paths` (the runtime reads those too)."""

from __future__ import annotations

import os
import socket
from pathlib import Path


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
