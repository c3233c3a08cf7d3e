"""The audit trail: an append-only, monthly-partitioned table of entries and the Merkle log's state.

Revision ID: 0001
Revises:

Tables (all in the service's own schema):
- ``trail``: one row per recorded Kafka record, partitioned by ``recorded_at`` (monthly, never
  dropped: old partitions are detached and archived). ``seq`` is the gapless leaf index.
- ``tree_node``: roots of completed perfect subtrees of height >= 8, written with their leaves, so
  proofs need O(log n) reads. ``tree_head``: every signed tree head.
- ``log_state``: the single row holding the log's size and Merkle frontier (the writer's lock).
- ``tap_position``: per Kafka partition, the next offset not yet recorded (idempotency by position).

Append-only by construction: triggers refuse UPDATE, DELETE and TRUNCATE on ``trail``, ``tree_node``
and ``tree_head``, and the role ``audit_writer`` (which the service SETs for every append) holds only
SELECT and INSERT on them.
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_APPEND_ONLY = ("trail", "tree_node", "tree_head")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE trail (
            seq            bigint      NOT NULL,
            recorded_at    timestamptz NOT NULL,
            topic          text        NOT NULL,
            partition      int         NOT NULL,
            "offset"       bigint      NOT NULL,
            kafka_ts       timestamptz,
            source         text,
            event_id       text        NOT NULL,
            event_type     text        NOT NULL,
            key            text,
            case_id        text,
            actor          text,
            trace_id       text,
            related_cases  text[],
            refs           text[],
            origin         text,
            headers        jsonb       NOT NULL,
            payload_sha256 bytea       NOT NULL,
            payload        bytea,
            leaf_hash      bytea       NOT NULL,
            PRIMARY KEY (seq, recorded_at)
        ) PARTITION BY RANGE (recorded_at)
        """
    )
    for ddl in (
        'CREATE INDEX trail_position ON trail (topic, partition, "offset")',
        "CREATE INDEX trail_event ON trail (topic, event_id)",
        # Recording order: time ranges, and the export (which lists entries in this order).
        'CREATE INDEX trail_recording ON trail (recorded_at, topic, partition, "offset")',
        "CREATE INDEX trail_case ON trail (case_id, seq) WHERE case_id IS NOT NULL",
        "CREATE INDEX trail_trace ON trail (trace_id, seq) WHERE trace_id IS NOT NULL",
        "CREATE INDEX trail_actor ON trail (actor, seq) WHERE actor IS NOT NULL",
        "CREATE INDEX trail_origin ON trail (origin) WHERE origin IS NOT NULL",
        "CREATE INDEX trail_related ON trail USING gin (related_cases) WHERE related_cases IS NOT NULL",
        """CREATE TABLE tree_node (
               height smallint NOT NULL, position bigint NOT NULL, hash bytea NOT NULL,
               PRIMARY KEY (height, position))""",
        """CREATE TABLE tree_head (
               tree_size bigint NOT NULL, timestamp_ms bigint NOT NULL, root_hash bytea NOT NULL,
               key_id text NOT NULL, signature bytea NOT NULL, PRIMARY KEY (tree_size, timestamp_ms))""",
        """CREATE TABLE log_state (
               one boolean PRIMARY KEY DEFAULT true CHECK (one), size bigint NOT NULL,
               frontier bytea NOT NULL, last_recorded_at timestamptz)""",
        "INSERT INTO log_state (size, frontier) VALUES (0, '\\x0000000000000000'::bytea)",
        """CREATE TABLE tap_position (
               topic text NOT NULL, partition int NOT NULL, next_offset bigint NOT NULL,
               PRIMARY KEY (topic, partition))""",
        """CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
               RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
                   USING ERRCODE = 'insufficient_privilege';
           END $$""",
        # Partitions of the trail, created ahead of time by the service (never dropped). TRUNCATE
        # triggers are per table, so each partition gets its own; row triggers are cloned from the parent.
        """CREATE FUNCTION ensure_trail_partition(month date) RETURNS text LANGUAGE plpgsql AS $$
           DECLARE
               first date := date_trunc('month', month)::date;
               name text := format('trail_y%sm%s', to_char(first, 'YYYY'), to_char(first, 'MM'));
           BEGIN
               IF to_regclass(quote_ident(name)) IS NULL THEN
                   EXECUTE format('CREATE TABLE %I PARTITION OF trail FOR VALUES FROM (%L) TO (%L)',
                                  name, first, (first + interval '1 month')::date);
                   EXECUTE format('CREATE TRIGGER trail_no_truncate BEFORE TRUNCATE ON %I '
                                  'FOR EACH STATEMENT EXECUTE FUNCTION refuse_change()', name);
               END IF;
               RETURN name;
           END $$""",
    ):
        op.execute(ddl)
    for table in _APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION refuse_change()"
        )
    op.execute("SELECT ensure_trail_partition(now()::date)")
    op.execute("SELECT ensure_trail_partition((now() + interval '1 month')::date)")
    # The writer role: SELECT and INSERT on the append-only tables, nothing else. Roles are cluster-wide,
    # so it may exist already (another schema, another service instance).
    op.execute(
        """
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'audit_writer') THEN
                CREATE ROLE audit_writer NOLOGIN;
            END IF;
            EXECUTE format('GRANT audit_writer TO %I', current_user);
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO audit_writer', current_schema());
        END $$
        """
    )
    op.execute("GRANT SELECT, INSERT ON trail, tree_node, tree_head TO audit_writer")
    op.execute("GRANT SELECT, INSERT, UPDATE ON log_state, tap_position TO audit_writer")


def downgrade() -> None:
    raise RuntimeError("the audit trail is never dropped by a migration")
