"""Per-department webhook secrets rotated through the API (webhook_secrets.py): the current secret
signs every delivery; the previous one is kept with the time until which the department's verifier
still accepts it. A department without a row signs with its configured secret.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE webhook_secrets (
            department      text PRIMARY KEY,
            secret          text NOT NULL,
            previous_secret text,
            previous_until  timestamptz,
            rotated_at      timestamptz NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE webhook_secrets")
