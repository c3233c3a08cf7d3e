"""Registry records, versioned: every change is a new row; the current one has valid_to NULL.

Revision ID: 0001
Revises:
"""

from alembic import op

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
            version    int NOT NULL,
            body       jsonb,
            valid_from timestamptz NOT NULL DEFAULT now(),
            valid_to   timestamptz,
            PRIMARY KEY (kind, code, version)
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX record_current ON record_version (kind, code) WHERE valid_to IS NULL")


def downgrade() -> None:
    op.execute("DROP TABLE record_version")
