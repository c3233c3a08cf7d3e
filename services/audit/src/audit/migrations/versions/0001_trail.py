"""The wire-tap trail.

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
        CREATE TABLE trail (
            seq            bigint GENERATED ALWAYS AS IDENTITY,
            recorded_at    timestamptz NOT NULL DEFAULT now(),
            topic          text NOT NULL,
            partition      int NOT NULL,
            "offset"       bigint NOT NULL,
            kafka_ts       bigint,
            key            bytea,
            event_id       text,
            event_type     text,
            subject        text,
            traceparent    text,
            payload_sha256 bytea NOT NULL,
            payload        bytea NOT NULL,
            headers        jsonb NOT NULL,
            PRIMARY KEY (topic, partition, "offset")
        )
        """
    )
    op.execute("CREATE INDEX trail_subject ON trail (subject) WHERE subject IS NOT NULL")
    op.execute("CREATE INDEX trail_seq ON trail (seq)")


def downgrade() -> None:
    op.execute("DROP TABLE trail")
