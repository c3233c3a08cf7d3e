"""Registry records, versioned, and the outbox that publishes every change to grid.registry.v1.

`record_version` keeps every version of every record: the current one has valid_to NULL; a delete
closes the current version and adds a tombstone version (body NULL), so a key re-created later goes on
counting. What was in force at instant t: valid_from <= t < coalesce(valid_to, infinity), body not
NULL. `parent` (division parent, grid community or parent grid, staff department) serves sibling and
children queries; `body` is exactly the record published on the topic.

Revision ID: 0001
Revises:
"""

from alembic import op

from onegrid.outbox import outbox_ddl

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE record_version (
            kind       text NOT NULL,
            code       text NOT NULL,
            version    int NOT NULL CHECK (version >= 1),
            parent     text,
            level      text,
            body       jsonb,
            valid_from timestamptz NOT NULL,
            valid_to   timestamptz,
            PRIMARY KEY (kind, code, version),
            CHECK (valid_to IS NULL OR valid_to >= valid_from)
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX record_current ON record_version (kind, code) WHERE valid_to IS NULL")
    op.execute(
        "CREATE INDEX record_current_parent ON record_version (kind, parent, level) "
        "WHERE valid_to IS NULL AND body IS NOT NULL"
    )
    op.execute("CREATE INDEX record_history ON record_version (kind, valid_from)")
    op.execute(outbox_ddl())


def downgrade() -> None:
    op.execute("DROP TABLE outbox")
    op.execute("DROP TABLE record_version")
