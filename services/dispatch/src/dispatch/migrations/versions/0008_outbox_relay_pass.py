"""The outbox relay publishes exactly once: each row records the relay pass that claimed it
(onegrid.outbox), so a relay taking the table over knows which rows Kafka already has.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

from onegrid.outbox import add_relay_pass_ddl

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(add_relay_pass_ddl("outbox"))


def downgrade() -> None:
    op.execute("ALTER TABLE outbox DROP COLUMN relay_pass")
