"""`python -m onegrid.migrate <package>`: run one service's Alembic migrations to head, and exit.

What a service does first at start (onegrid.wiring), as a step of its own: a deployment runs it as a
Job before the rollout (deploy/k8s), so that new instances start on a migrated schema and a failed
migration stops the rollout instead of crash-looping every pod. The same advisory lock serializes it
with any instance starting at the same time. Needs only `DATABASE_URL`; the schema is the service's
own (its settings' `db_schema`, or `--schema`).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
from importlib.resources import files
from pathlib import Path

from onegrid.db import migrate
from onegrid.settings import ServiceSettings


def service_schema(package: str) -> str:
    """The schema a service owns: the default of its settings' `db_schema`."""
    settings_cls = importlib.import_module(f"{package}.settings").Settings
    schema = settings_cls.model_fields["db_schema"].default
    if not isinstance(schema, str):
        raise SystemExit(f"{package}.settings.Settings has no db_schema default")
    return schema


def migrations_of(package: str) -> Path:
    path = Path(str(files(package) / "migrations"))
    if not path.is_dir():
        raise SystemExit(f"{package} has no migrations folder")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m onegrid.migrate", description=__doc__)
    parser.add_argument("package", help="the service's Python package, e.g. intake, grid_registry")
    parser.add_argument("--schema", help="the schema to migrate (default: the service's own)")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("DATABASE_URL is not set")
    # The same normalization as every service's settings (postgresql:// -> asyncpg).
    url = ServiceSettings(environment="development").database_url
    schema = args.schema or service_schema(args.package)
    asyncio.run(migrate(url, schema, migrations_of(args.package)))
    print(f"{args.package}: schema {schema} migrated to head")


if __name__ == "__main__":
    main()
