"""Open311 service requests: what `GET requests` answers, with the status that follows the case.

The personal columns (first_name, last_name, email, phone, device_id, account_id) are stored for the
command centre and never selected by the public Open311 API. `lifecycle_seq` is the `seq` of the last
case.lifecycle.v1 event applied, so replayed or late events never move the status backwards.
`case_id` starts as the case the request would open (identity.case_id_for) and is moved to the case
intake linked it into when `cases.v1` says so.

Until this service was split from intake, the table lived in intake's schema; its rows are copied
from there when that table exists (a system upgraded in place keeps its residents' requests).

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_COLUMNS = (
    "id, case_id, service_code, description, lat, long, address, address_id, media_url, "
    "requested_datetime, updated_datetime, expected_datetime, status, status_notes, agency_responsible, "
    "lifecycle_seq, first_name, last_name, email, phone, device_id, account_id"
)


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE open311_request (
            id                 uuid PRIMARY KEY,
            case_id            uuid NOT NULL,
            service_code       text NOT NULL,
            description        text,
            lat                double precision CHECK (lat BETWEEN -90 AND 90),
            long               double precision CHECK (long BETWEEN -180 AND 180),
            address            text,
            address_id         text,
            media_url          text,
            requested_datetime timestamptz NOT NULL,
            updated_datetime   timestamptz NOT NULL,
            expected_datetime  timestamptz,
            status             text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
            status_notes       text,
            agency_responsible text,
            lifecycle_seq      integer NOT NULL DEFAULT 0,
            first_name         text,
            last_name          text,
            email              text,
            phone              text,
            device_id          text,
            account_id         text,
            CHECK ((lat IS NULL) = (long IS NULL))
        )
        """
    )
    # Not unique: requests correlated into one case (same problem, nearby, soon after) share it.
    op.execute("CREATE INDEX open311_request_case ON open311_request (case_id)")
    # GET requests: newest first within a date window, optionally by service code and status.
    op.execute("CREATE INDEX open311_request_requested ON open311_request (requested_datetime DESC)")
    op.execute(
        "CREATE INDEX open311_request_service_requested ON open311_request (service_code, requested_datetime DESC)"
    )
    op.execute(
        f"""
        DO $$
        BEGIN
            IF to_regclass('intake.open311_request') IS NOT NULL THEN
                INSERT INTO open311_request ({_COLUMNS}) SELECT {_COLUMNS} FROM intake.open311_request
                ON CONFLICT (id) DO NOTHING;
            END IF;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'intake.open311_request not readable: no requests copied';
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE open311_request")
