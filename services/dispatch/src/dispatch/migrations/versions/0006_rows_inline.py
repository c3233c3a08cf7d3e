"""A case row and a routing decision are stored inline and uncompressed up to a page: PostgreSQL
otherwise compresses (pglz) every row over ~2 kB as it writes it, and a case row is written again at
every change of the case. Measured on the desk (bench/desk.py, 6,000 cases, one unit per 500): the
case upsert 102 → 68 µs and the routing-decision COPY 97 → 54 µs of PostgreSQL per case, for rows of
~2.3 kB (case) and ~2.8 kB (decision) stored as they are instead of compressed. Rows already written
stay as they are.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("cases", "routing_decisions")


def upgrade() -> None:
    for table in TABLES:
        # 8160: the largest target a table takes (one 8 kB page less its header)
        op.execute(f"ALTER TABLE {table} SET (toast_tuple_target = 8160)")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (toast_tuple_target)")
