"""Webhook deliveries remember the trace that created them, so the department's HTTP request
continues the trace from the legacy packet.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE deliveries ADD COLUMN traceparent text")


def downgrade() -> None:
    op.execute("ALTER TABLE deliveries DROP COLUMN traceparent")
