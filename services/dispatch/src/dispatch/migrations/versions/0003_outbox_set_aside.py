"""Outbox rows the relay cannot publish (too large, a refused topic) are set aside with the reason,
so one bad row never stops every later order and lifecycle event (onegrid.outbox).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from onegrid.outbox import set_aside_ddl

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(set_aside_ddl("outbox"))


def downgrade() -> None:
    op.execute("DROP TABLE outbox_set_aside")
