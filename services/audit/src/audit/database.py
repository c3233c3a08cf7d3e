"""The asyncpg pool the trail is written and read through (COPY needs asyncpg's own connection).

Built before the event loop runs (in ``bootstrap``), opened in the app's start-up after migrations.
``acquire()`` gives a connection whose search_path is the service's schema.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from onegrid.db import server_settings


def libpq_url(url: str) -> str:
    """The plain ``postgresql://`` form of a SQLAlchemy ``postgresql+asyncpg://`` URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class Database:
    def __init__(self, url: str, schema: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self._url = libpq_url(url)
        self.schema = schema
        self._sizes = (min_size, max_size)
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(
                self._url,
                min_size=self._sizes[0],
                max_size=self._sizes[1],
                server_settings=server_settings(self.schema),
            )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def acquire(self) -> Any:
        """``async with db.acquire() as conn``; raises if the pool is not open."""
        if self._pool is None:
            raise RuntimeError("the audit database pool is not open yet")
        return self._pool.acquire()
