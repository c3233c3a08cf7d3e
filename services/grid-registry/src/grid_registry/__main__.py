"""`python -m grid_registry`: run the service (HTTP API, outbox relay, changelog consumer) until SIGTERM.

`python -m grid_registry seed`: migrate, then load the seed (idempotent: unchanged records are
skipped) and publish the changes, then exit.
"""

import asyncio
import sys

from grid_registry.bootstrap import MIGRATIONS, bootstrap
from grid_registry.domain.seed import seed_records
from onegrid.db import migrate
from onegrid.kafka.admin import ensure_topics
from onegrid.kafka.producer import make_producer
from onegrid.service import serve
from onegrid.topics import CATALOGUE


async def seed() -> None:
    built = bootstrap()
    s = built.settings
    await migrate(s.database_url, s.db_schema, MIGRATIONS)
    changed = await built.registry.seed(seed_records(s.geometry_seed))
    await ensure_topics(s.kafka, CATALOGUE)
    producer = make_producer(s.kafka, client_id=f"{s.client_id}-seed")
    await producer.start()
    try:
        published = await built.relay.drain(producer)
    finally:
        await producer.stop()
        await built.wiring.engine.dispose()
    print(f"seed: {changed} records changed, {published} changelog records published")


def main() -> None:
    if sys.argv[1:] == ["seed"]:
        asyncio.run(seed())
        return
    service = bootstrap()
    serve(service.app, service.settings)


if __name__ == "__main__":
    main()
