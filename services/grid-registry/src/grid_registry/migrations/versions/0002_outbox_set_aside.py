"""Outbox rows the relay cannot publish are set aside with the reason (onegrid.outbox), so one bad
record never stops the changelog.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from onegrid.outbox import set_aside_ddl

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(set_aside_ddl())


def downgrade() -> None:
    op.execute("DROP TABLE outbox_set_aside")
