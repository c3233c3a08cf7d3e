"""Evaluation read models: the lifecycle events as received, the facts per case, the metric rows.

Revision ID: 0001
Revises:

Tables (in the service's own schema; all three are rebuilt from case.lifecycle.v1 by
`python -m evaluation rebuild`, which truncates them and replays the topic from offset zero):
- ``lifecycle_event``: one row per (case_id, seq), the event body as published; a repeat (same
  event, published again by dispatch's at-least-once outbox) is not stored twice.
- ``case_fact``: the facts of each case folded from all its stored events (evaluation.domain.case_facts).
- ``metric``: one row per (dimension, granularity, period_start, value); figures as defined in
  evaluation.domain.metrics and contracts/bi/README.md, with the rule and taxonomy versions of the
  cases counted and the definition (rules and their parameters) used.
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_COUNTS = [
    "registered",
    "cancelled",
    "merged",
    "closable",
    "closed",
    "on_time_closed",
    "dispatched",
    "returned",
    "resolved",
    "reworked",
    "ever_closed",
    "reopened",
    "whistled",
    "hops",
    "self_handled",
    "verifications",
    "verifications_in_time",
    "incomplete",
]
_FIGURES = [
    "closure_rate",
    "on_time_closure_rate",
    "acknowledge_median_s",
    "acknowledge_p90_s",
    "resolve_median_s",
    "resolve_p90_s",
    "return_rate",
    "rework_rate",
    "reopen_rate",
    "whistle_rate",
    "hops_per_case",
    "self_handled_rate",
    "verification_timeliness",
]


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE lifecycle_event (
            case_id     uuid        NOT NULL,
            seq         integer     NOT NULL,
            event_id    uuid        NOT NULL,
            body        jsonb       NOT NULL,
            topic       text        NOT NULL,
            partition   integer     NOT NULL,
            "offset"    bigint      NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (case_id, seq)
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX lifecycle_event_id ON lifecycle_event (event_id)")
    op.execute(
        """
        CREATE TABLE case_fact (
            case_id       uuid        PRIMARY KEY,
            registered_at timestamptz NOT NULL,
            state         text        NOT NULL,
            street        text,
            department    text,
            facts         jsonb       NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX case_fact_registered ON case_fact (registered_at)")
    counts = ",\n".join(f"{c} integer NOT NULL" for c in _COUNTS)
    figures = ",\n".join(f"{c} double precision" for c in _FIGURES)
    op.execute(
        f"""
        CREATE TABLE metric (
            dimension         text   NOT NULL,
            value             text   NOT NULL,
            granularity       text   NOT NULL CHECK (granularity IN ('day', 'week', 'month')),
            period_start      date   NOT NULL,
            {counts},
            {figures},
            rule_versions     text[] NOT NULL,
            taxonomy_versions text[] NOT NULL,
            definition        text   NOT NULL,
            PRIMARY KEY (dimension, granularity, period_start, value)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE metric")
    op.execute("DROP TABLE case_fact")
    op.execute("DROP TABLE lifecycle_event")
