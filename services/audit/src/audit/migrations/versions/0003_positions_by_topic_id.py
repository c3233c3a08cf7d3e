"""Positions keyed by the Kafka topic's id: a topic deleted and created again under its name is a new
key, so its offsets from 0 are not taken for records already in the trail.

Revision ID: 0003
Revises: 0002

`tap_position` gets `topic_id` (null on rows from before: the writer adopts such a row for the id it
finds for that name, once) and is unique per (topic_id, partition), or per (topic, partition) for a
topic whose id is not known. `trail` gets `topic_id` too (null on earlier rows): the position a record
was read from, to tell a redelivery from a rewritten log. Adding a nullable column rewrites nothing and
fires no UPDATE trigger: the trail stays append-only.
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for ddl in (
        "ALTER TABLE tap_position ADD COLUMN topic_id uuid",
        "ALTER TABLE tap_position DROP CONSTRAINT tap_position_pkey",
        "CREATE UNIQUE INDEX tap_position_by_id ON tap_position (topic_id, partition) WHERE topic_id IS NOT NULL",
        "CREATE UNIQUE INDEX tap_position_by_name ON tap_position (topic, partition) WHERE topic_id IS NULL",
        "ALTER TABLE trail ADD COLUMN topic_id uuid",
        'CREATE INDEX trail_topic_position ON trail (topic_id, partition, "offset")',
    ):
        op.execute(ddl)


def downgrade() -> None:
    raise RuntimeError("the audit trail is never dropped by a migration")
