"""Where each case stands, so that a request linked into a case shows that case's status at once.

A request can join a case that another network or resident reported earlier and that dispatch has
since taken up; the case's lifecycle events may all have been read before the link. `case_status`
keeps the latest lifecycle event of every case (one row per case, any network: a request may be
linked into any of them), and a link copies it onto the request.

A row with `seq` 0 and no status is a placeholder a link inserts for a case whose lifecycle has not
been read yet: the lock on it orders the link and the case's first event (store.py says why).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE case_status (
            case_id            uuid PRIMARY KEY,
            seq                integer NOT NULL,
            status             text CHECK (status IN ('open', 'closed')),
            status_notes       text,
            updated_datetime   timestamptz,
            expected_datetime  timestamptz,
            agency_responsible text,
            CHECK ((seq = 0) = (status IS NULL))
        )
        """
    )
    # Filled from case.lifecycle.v1 (kept forever): the status loop's group, new with this service,
    # reads it from the start.


def downgrade() -> None:
    op.execute("DROP TABLE case_status")
