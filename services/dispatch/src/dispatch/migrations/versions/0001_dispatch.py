"""Dispatch schema: cases, their transitions, deadlines, orders, processed messages, webhook
deliveries and the transactional outbox.

Revision ID: 0001
Revises:
"""

from alembic import op

from onegrid.outbox import outbox_ddl

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


SCHEMA = """
        CREATE TABLE cases (
            case_id       uuid PRIMARY KEY,
            state         text NOT NULL,
            department    text,
            tier          text NOT NULL,
            grid          text,
            hops          int NOT NULL,
            body          jsonb NOT NULL,         -- the Case document (domain/case.py)
            registered_at timestamptz NOT NULL,
            updated_at    timestamptz NOT NULL
        );
        CREATE INDEX cases_state ON cases (state);
        CREATE INDEX cases_department ON cases (department);
        CREATE INDEX cases_grid ON cases (grid);

        CREATE TABLE transitions (
            event_id    uuid PRIMARY KEY,
            case_id     uuid NOT NULL,
            seq         int NOT NULL,
            from_state  text,
            to_state    text NOT NULL,
            action      text NOT NULL,
            actor       jsonb NOT NULL,
            reason      text,
            note        text,
            at          timestamptz NOT NULL,
            deadline_id uuid,
            UNIQUE (case_id, seq)
        );
        -- a deadline causes at most one transition, whatever the number of instances
        CREATE UNIQUE INDEX transitions_deadline ON transitions (deadline_id) WHERE deadline_id IS NOT NULL;

        CREATE TABLE deadlines (
            deadline_id uuid PRIMARY KEY,
            case_id     uuid NOT NULL,
            kind        text NOT NULL,
            due_at      timestamptz NOT NULL,
            status      text NOT NULL DEFAULT 'running',  -- running | fired | cleared | refused
            settled_at  timestamptz,
            detail      text
        );
        CREATE INDEX deadlines_due ON deadlines (due_at) WHERE status = 'running';
        CREATE INDEX deadlines_case ON deadlines (case_id);

        CREATE TABLE routing_decisions (
            event_id   uuid PRIMARY KEY,   -- the transition the decision was made for
            case_id    uuid NOT NULL,
            decision   jsonb NOT NULL,      -- tier, departments, rule, SLA, versions, rules considered
            decided_at timestamptz NOT NULL
        );

        CREATE TABLE orders (
            order_id   uuid PRIMARY KEY,
            case_id    uuid NOT NULL,
            department text NOT NULL,
            kind       text NOT NULL,
            hop        int NOT NULL,
            issued_at  timestamptz NOT NULL,
            body       jsonb NOT NULL
        );
        CREATE INDEX orders_case ON orders (case_id);

        CREATE TABLE processed (
            message_id text PRIMARY KEY,  -- case event_id or feedback_id
            case_id    uuid,
            outcome    text NOT NULL,     -- applied | refused:<reason>
            at         timestamptz NOT NULL
        );

        CREATE TABLE deliveries (
            delivery_id     uuid PRIMARY KEY,
            order_id        uuid NOT NULL,
            department      text NOT NULL,
            url             text NOT NULL,
            body            bytea NOT NULL,
            status          text NOT NULL DEFAULT 'pending',  -- pending | delivered
            attempts        int NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL,
            lease_until     timestamptz,
            last_error      text,
            created_at      timestamptz NOT NULL,
            delivered_at    timestamptz
        );
        CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
"""


def upgrade() -> None:
    # asyncpg prepares each statement: one command per execute
    for statement in SCHEMA.split(";"):
        if statement.strip():
            op.execute(statement)
    op.execute(outbox_ddl("outbox"))


def downgrade() -> None:
    op.execute(
        "DROP TABLE outbox, deliveries, processed, orders, routing_decisions, deadlines, transitions, cases"
    )
