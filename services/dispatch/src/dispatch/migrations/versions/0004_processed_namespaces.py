"""Idempotency keys in namespaces: a processed message is keyed by who may send it (`source`: case,
feedback, action) and on whose behalf (`caller`: intake, the department, the operator), so a
department's feedback_id or an operator's Idempotency-Key can no longer claim one of intake's
deterministic event ids and suppress a case (store.MessageKey).

Rows from before are kept as `legacy`: their sender was never recorded. The desk counts a legacy row
as a duplicate only of the same message on the same case and only where it applied something; a
legacy refusal claimed nothing, so a pre-claimed id of a future case stays free.

Revision ID: 0004
Revises: 0003
"""

from onegrid.db import run_statements

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


UPGRADE = """
        ALTER TABLE processed ADD COLUMN source text NOT NULL DEFAULT 'legacy',
                              ADD COLUMN caller text NOT NULL DEFAULT '';
        ALTER TABLE processed ALTER COLUMN source DROP DEFAULT, ALTER COLUMN caller DROP DEFAULT;
        ALTER TABLE processed DROP CONSTRAINT processed_pkey;
        ALTER TABLE processed ADD PRIMARY KEY (source, caller, message_id);
        CREATE INDEX processed_message ON processed (message_id)
"""
# Ids used in several namespaces cannot share the old single key: the newest row of each is kept.
DOWNGRADE = """
        DELETE FROM processed p USING processed q
        WHERE p.message_id = q.message_id AND (p.at, p.source, p.caller) < (q.at, q.source, q.caller);
        DROP INDEX processed_message;
        ALTER TABLE processed DROP CONSTRAINT processed_pkey;
        ALTER TABLE processed DROP COLUMN source, DROP COLUMN caller;
        ALTER TABLE processed ADD PRIMARY KEY (message_id)
"""


def upgrade() -> None:
    run_statements(UPGRADE)


def downgrade() -> None:
    run_statements(DOWNGRADE)
