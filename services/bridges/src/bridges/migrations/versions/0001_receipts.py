"""Receipts of pushed records: what the bridges have written to Kafka for a sender's record id.

Revision ID: 0001
Revises:

``receipt``: one row per (source, record_id, sha256) written to Kafka and acknowledged, with where
it landed. A push of the same record (same id, same bytes) finds its row and is answered 202 again
without a second record; the same id with other bytes (a correction) is a new record.
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE receipt (
            source      text NOT NULL,
            record_id   text NOT NULL,
            sha256      text NOT NULL,
            sender      text NOT NULL,
            topic       text NOT NULL,
            kafka_partition integer NOT NULL,
            kafka_offset    bigint NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (source, record_id, sha256)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE receipt")
