"""One dispatch instance as a separate process, so tests can SIGKILL it:
`python dispatch_instance.py PORT INSTANCE_ID` (everything else from ONEGRID_* / DATABASE_URL)."""

from __future__ import annotations

import asyncio
import sys

import uvicorn

from dispatch.bootstrap import bootstrap
from dispatch.settings import Settings


async def main(port: int, instance: str) -> None:
    built = bootstrap(Settings(http_port=port, instance_id=instance))
    server = uvicorn.Server(
        uvicorn.Config(built.app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    await server.serve()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
