"""The rules a routing decision looked at are stored once per set of rules, not in every decision.

A decision kept the (code, revision) list of every active rule it looked at (85 with the seed: ~2 kB
of a ~2.8 kB row), the same list for every case routed under one version of the rules. The list is
now stored once in `routing_rule_sets`, keyed by its SHA-256 (dispatch.domain.routing.RuleSet), and a
decision names it (`rule_set`). Decisions written before keep their list inside `decision`.
`routing_decisions_whole` shows every decision as it was written before, list included, whichever
way it was stored: what a disputed evaluation replays.

Revision ID: 0007
Revises: 0006
"""

from onegrid.db import run_statements

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE = """
        CREATE TABLE routing_rule_sets (
            rule_set  text PRIMARY KEY,     -- sha256 of `rules` as JSON, hex
            rules     jsonb NOT NULL,       -- [[code, revision], ...] in the order tried
            stored_at timestamptz NOT NULL DEFAULT now()
        );
        ALTER TABLE routing_decisions ADD COLUMN rule_set text;
        CREATE VIEW routing_decisions_whole AS
            SELECT d.event_id, d.case_id, d.decided_at, d.rule_set,
                   CASE WHEN s.rules IS NULL THEN d.decision
                        ELSE d.decision || jsonb_build_object('considered_rules', s.rules)
                   END AS decision
            FROM routing_decisions d LEFT JOIN routing_rule_sets s ON s.rule_set = d.rule_set
"""
DOWNGRADE = """
        UPDATE routing_decisions d SET decision = d.decision || jsonb_build_object('considered_rules', s.rules)
        FROM routing_rule_sets s WHERE s.rule_set = d.rule_set;
        DROP VIEW routing_decisions_whole;
        ALTER TABLE routing_decisions DROP COLUMN rule_set;
        DROP TABLE routing_rule_sets
"""


def upgrade() -> None:
    run_statements(UPGRADE)


def downgrade() -> None:
    run_statements(DOWNGRADE)
