"""onegrid: what every OneGrid service needs and nothing domain-specific.

- `onegrid.settings`: one pydantic-settings base, failing fast.
- `onegrid.topics`: the topic catalogue as code and its idempotent creation.
- `onegrid.envelope`: CloudEvents 1.0 in Kafka binary mode.
- `onegrid.kafka`: producer, batch consumer loop, error policy with DLQ, transactional pipeline.
- `onegrid.telemetry`: traces across Kafka and HTTP, metrics, JSON logs.
- `onegrid.db`: async SQLAlchemy engine and per-service Alembic migrations.
- `onegrid.service`: the runtime that joins an HTTP app and consumer loops (health, readiness, metrics).
- `onegrid.periodic`: the one runner of background jobs (outbox relay, deadlines, signers): stop, backoff.
- `onegrid.provided`: what a router hands its module-level endpoints, as an `Annotated` dependency.
- `onegrid.paths`: the checkout's root, cache and run folders (the runtime's development secrets).
"""
