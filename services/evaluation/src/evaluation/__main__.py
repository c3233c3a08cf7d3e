"""`python -m evaluation`: run the service (HTTP API and the projector loop) until SIGTERM.

`python -m evaluation rebuild`: drop the read models and replay case.lifecycle.v1 from offset zero
with a fresh consumer group, up to the end offsets found at start; prints what it replayed.
"""

from __future__ import annotations

import asyncio
import json
import sys

from evaluation.settings import Settings


def main(argv: list[str]) -> int:
    if argv[:1] == ["rebuild"]:
        from evaluation.rebuild import rebuild

        report = asyncio.run(rebuild(Settings()))
        print(json.dumps(report.as_dict(), ensure_ascii=False))
        return 0
    if argv:
        print("usage: python -m evaluation [rebuild]", file=sys.stderr)
        return 2
    from evaluation.bootstrap import bootstrap
    from onegrid.service import serve

    service = bootstrap()
    serve(service.app, service.settings)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
