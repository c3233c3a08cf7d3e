"""`python -m devstack {fetch-kafka|up|down|status|logs|run}` (what the Makefile calls)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from devstack.errors import SetupError

USAGE = "usage: python -m devstack {fetch-kafka|lock-kafka|java|up|down|status|logs|run}"


def main(argv: list[str]) -> int:
    try:
        return _main(argv)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(USAGE, file=sys.stderr)
        return 2
    cmd = argv[0]
    if cmd == "fetch-kafka":
        from devstack.kafka import fetch_jars

        print(f"kafka jars: {fetch_jars()}")
        return 0
    if cmd == "lock-kafka":
        from devstack.kafka import write_lock

        print(f"wrote {write_lock()}")
        return 0
    if cmd == "java":
        from devstack.java import find_java

        print(find_java().describe())
        return 0
    from devstack.stack import Stack

    stack = Stack(simulate=cmd == "run" and os.environ.get("ONEGRID_SIMULATE", "1") != "0")
    actions: dict[str, Callable[[], None]] = {
        "up": stack.up,
        "down": stack.down,
        "status": stack.status,
        "logs": stack.logs_tail,
        "run": stack.run_foreground,
    }
    if cmd not in actions:
        print(USAGE, file=sys.stderr)
        return 2
    actions[cmd]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
