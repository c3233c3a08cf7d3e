"""Alembic environment: the shared one, on this service's own schema."""

from onegrid.db import run_alembic_env

run_alembic_env()
