"""Dispatch inbox.

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
        CREATE TABLE inbox (
            event_id    text PRIMARY KEY,
            topic       text NOT NULL,
            case_id     text,
            event_type  text,
            body        jsonb NOT NULL,
            received_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )
        """
    )
    op.execute("CREATE INDEX inbox_case ON inbox (case_id)")


def downgrade() -> None:
    op.execute("DROP TABLE inbox")
