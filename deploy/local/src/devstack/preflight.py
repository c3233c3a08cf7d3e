"""Checks before the local stack starts anything, each failure one sentence that says what to do."""

from __future__ import annotations

import shutil
from pathlib import Path

import psutil

from devstack.errors import SetupError
from devstack.paths import port_in_use


def port_holder(port: int) -> str | None:
    """Who listens on 127.0.0.1:`port` ("pid 123 (java …)"), None if nobody; "another process" when
    the operating system does not say (another user's process without privileges)."""
    if not port_in_use(port):
        return None
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return "another process"
    for c in conns:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            try:
                proc = psutil.Process(c.pid)
                cmd = " ".join(proc.cmdline()[:3]) or proc.name()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                cmd = "?"
            return f"pid {c.pid} ({cmd[:80]})"
    return "another process"


def check_ports(ports: dict[str, tuple[int, str]]) -> None:
    """`ports`: what -> (port, the variable that moves it). All taken ports are named at once."""
    taken = []
    for what, (port, variable) in ports.items():
        holder = port_holder(port)
        if holder:
            taken.append(f"port {port} for {what} is held by {holder}: stop it or set {variable}")
    if taken:
        raise SetupError("; ".join(taken))


def check_disk(where: Path, *, need_mib: int) -> None:
    where.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(where).free // 2**20
    if free < need_mib:
        raise SetupError(
            f"only {free} MiB free under {where}, about {need_mib} MiB needed: free some disk space "
            "or point ONEGRID_RUN (state) and ONEGRID_CACHE (jars) at a larger disk"
        )
