"""Lineage, registry versions and dimensions (issue: BI loads the figures into a warehouse).

Revision ID: 0002
Revises: 0001

- ``metric``: `grid_versions` (the registry versions of the counted cases), `last_event_at` and
  `restated` (events after the period's end changed the row), `computed_at` (when its figures last
  changed, wall clock; not part of what a rebuild must reproduce).
- ``lineage``: per partition of case.lifecycle.v1, the next offset the read models have taken in,
  written in the same transaction as the events: what every export states as its as-of.
- ``dimension_version``: every version of every registry record seen on grid.registry.v1, with its
  validity interval [valid_from, valid_to) (a slowly changing dimension, type 2).
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE metric
            ADD COLUMN grid_versions text[]      NOT NULL DEFAULT '{}',
            ADD COLUMN last_event_at timestamptz,
            ADD COLUMN restated      boolean     NOT NULL DEFAULT false,
            ADD COLUMN computed_at   timestamptz NOT NULL DEFAULT now()
        """
    )
    op.execute(
        """
        CREATE TABLE lineage (
            topic       text        NOT NULL,
            partition   integer     NOT NULL,
            next_offset bigint      NOT NULL,
            updated_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (topic, partition)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE dimension_version (
            kind       text        NOT NULL,
            code       text        NOT NULL,
            revision   integer     NOT NULL,
            valid_from timestamptz NOT NULL,
            valid_to   timestamptz,
            deleted    boolean     NOT NULL DEFAULT false,
            record     jsonb       NOT NULL,
            PRIMARY KEY (kind, code, revision)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE dimension_version")
    op.execute("DROP TABLE lineage")
    op.execute(
        "ALTER TABLE metric DROP COLUMN grid_versions, DROP COLUMN last_event_at, "
        "DROP COLUMN restated, DROP COLUMN computed_at"
    )
