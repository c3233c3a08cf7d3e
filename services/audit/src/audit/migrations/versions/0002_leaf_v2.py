"""Leaf layout v2: entries commit to a digest of their headers; the layout of each row is recorded.

Revision ID: 0002
Revises: 0001

Rows written before this revision keep layout 1 (the column's default): their stored leaf hashes stay
what they were, so the log verifies across the change. Adding a column with a constant default
rewrites nothing and fires no UPDATE trigger: the trail stays append-only.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE trail ADD COLUMN leaf_version smallint NOT NULL DEFAULT 1")


def downgrade() -> None:
    op.execute("ALTER TABLE trail DROP COLUMN leaf_version")
