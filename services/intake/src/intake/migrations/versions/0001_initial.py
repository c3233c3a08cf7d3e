"""Intake's schema baseline.

Intake keeps its processing state in Kafka (the case book is rebuilt from cases.v1, HJ 212 episodes
from the compacted intake.state.v1, both written in the same transactions as its outputs), so its
database holds only what the Open311 API serves (0002).

Revision ID: 0001
Revises:
"""

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
