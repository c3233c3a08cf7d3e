"""Each case's contribution to the metric rows, so a batch recomputes rows without reading other cases.

Revision ID: 0003
Revises: 0002

- ``metric_member``: one row per (dimension, value, local registration day, case): what the case
  adds to the rows of that unit (evaluation.domain.metrics.Member: its counts, its durations, its
  versions, its latest transition). A row of a (dimension, value, granularity, period) combines the
  members of the unit whose day lies in the period: an index range. Versions sort as the domain
  sorts them (code points: collation "C"). Filled here from the stored case facts; rebuilt with
  the other read models by `python -m evaluation rebuild`.
"""

from alembic import op
from sqlalchemy import text

from evaluation.domain.case_facts import decode_facts
from evaluation.store import INSERT_MEMBERS, members_json

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_COUNTS = [
    "registered",
    "cancelled",
    "merged",
    "closed",
    "on_time_closed",
    "ever_closed",
    "reopened",
    "hops",
    "self_handled",
    "verifications",
    "verifications_in_time",
    "dispatched",
    "returned",
    "resolved",
    "reworked",
    "whistled",
    "incomplete",
]
_CHUNK = 5000


def upgrade() -> None:
    counts = ",\n".join(f"{c} integer NOT NULL" for c in _COUNTS)
    op.execute(
        f"""
        CREATE TABLE metric_member (
            dimension        text   NOT NULL,
            value            text   NOT NULL,
            day              date   NOT NULL,
            case_id          uuid   NOT NULL,
            {counts},
            acknowledge_s    double precision[] NOT NULL,
            resolve_s        double precision[] NOT NULL,
            rule_version     text COLLATE "C",
            taxonomy_version text COLLATE "C",
            grid_version     text COLLATE "C",
            last_event_at    timestamptz,
            PRIMARY KEY (dimension, value, day, case_id)
        )
        """
    )
    op.execute("CREATE INDEX metric_member_case ON metric_member (case_id)")
    _fill_from_case_facts()


def _fill_from_case_facts() -> None:
    """The members of the cases already folded, a chunk of cases at a time."""
    conn = op.get_bind()
    after = "00000000-0000-0000-0000-000000000000"
    while True:
        chunk = conn.execute(
            text(
                "SELECT case_id::text, facts::text FROM case_fact WHERE case_id > CAST(:a AS uuid) "
                "ORDER BY case_id LIMIT :n"
            ),
            {"a": after, "n": _CHUNK},
        ).all()
        if not chunk:
            return
        conn.execute(text(INSERT_MEMBERS), {"m": members_json([decode_facts(f) for _, f in chunk])})
        after = chunk[-1][0]


def downgrade() -> None:
    op.execute("DROP TABLE metric_member")
