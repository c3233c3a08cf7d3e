"""A real S3-compatible server for tests: moto's S3 server on a free port (in a thread of the test
process, reachable over TCP by the services the test starts), one bucket, and the standard AWS_*
environment every S3 client (s3fs, boto3) reads while it runs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def s3_server(bucket: str) -> Iterator[Any]:
    """Yields a boto3 S3 client of the server; the environment points every client at it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "onegrid-test",
        "AWS_SECRET_ACCESS_KEY": "onegrid-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        import boto3

        client = boto3.client("s3")
        client.create_bucket(Bucket=bucket)
        yield client
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
