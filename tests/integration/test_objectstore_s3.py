"""Object storage on a real S3-compatible server: moto's S3 server, started by the test on a free
port, reached through s3fs exactly as a deployment configures it (an `s3://bucket/prefix` URL and the
standard AWS_* environment: endpoint, credentials, region).

The grid workers' photos (console.worker.photos): stored under their hash with their content type,
fetched by hash, a second upload of the same bytes a no-op, bytes that are not their hash refused
with nothing written; and the generic store's list and delete (the evaluation lake's calls)."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.worker.photos import PhotoStore
from onegrid.objectstore import FsspecStore, open_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.s3 import s3_server

pytestmark = pytest.mark.asyncio(loop_scope="session")
BUCKET = "onegrid-photos"
PNG = b"\x89PNG\r\n\x1a\n" + b"photo of a pile of rubbish" * 40
JPEG = b"\xff\xd8\xff\xe0" + b"after the clean-up" * 40


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    """moto's S3 server on a free port, a bucket in it, and the environment every S3 client reads."""
    pytest.importorskip("s3fs", reason="s3fs (the dev group) talks to S3-compatible stores")
    with s3_server(BUCKET) as client:
        yield client


def fresh(prefix: str) -> str:
    # fsspec caches filesystems by their arguments; each test its own prefix, the same server
    return f"s3://{BUCKET}/{prefix}"


async def test_photos_are_stored_by_hash_with_their_content_type(s3: Any) -> None:
    photos = PhotoStore.open(fresh("city-a"))
    assert isinstance(photos.store, FsspecStore)
    sha = hashlib.sha256(PNG).hexdigest()
    stored = await photos.put(sha, "image/png", PNG)
    assert stored.ref == f"photos/{sha[:2]}/{sha}.png" and stored.bytes == len(PNG)
    head = s3.head_object(Bucket=BUCKET, Key=f"city-a/{stored.ref}")
    assert head["ContentType"] == "image/png" and head["ContentLength"] == len(PNG)
    assert await photos.find(sha) == ("image/png", PNG)
    assert await photos.size(stored.ref) == len(PNG)
    # the same bytes again (the phone resends): one object, unchanged
    again = await photos.put(sha, "image/png", PNG)
    assert again == stored
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="city-a/")["Contents"]]
    assert keys == [f"city-a/{stored.ref}"]
    # a JPEG is a JPEG on the server too
    jsha = hashlib.sha256(JPEG).hexdigest()
    await photos.put(jsha, "image/jpeg", JPEG)
    assert (
        s3.head_object(Bucket=BUCKET, Key=f"city-a/photos/{jsha[:2]}/{jsha}.jpg")["ContentType"]
        == "image/jpeg"
    )
    assert await photos.find(jsha) == ("image/jpeg", JPEG)
    assert await photos.find("0" * 64) is None


async def test_bytes_that_are_not_their_hash_are_refused_and_nothing_is_written(s3: Any) -> None:
    photos = PhotoStore.open(fresh("city-b"))
    claimed = hashlib.sha256(b"what the phone hashed").hexdigest()
    with pytest.raises(ValueError, match="SHA-256"):
        await photos.put(claimed, "image/png", PNG)
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="city-b/").get("KeyCount") == 0
    assert await photos.find(claimed) is None
    with pytest.raises(ValueError):
        await photos.put(hashlib.sha256(PNG).hexdigest(), "image/gif", PNG)


async def test_the_generic_store_lists_and_deletes_on_s3(s3: Any) -> None:
    store = open_store(fresh("lake"))
    store.put("facts/day=2026-12-04/part-0.parquet", b"p0")
    store.put("facts/day=2026-12-04/part-1.parquet", b"p1", content_type="application/vnd.apache.parquet")
    assert store.list("facts") == [
        "facts/day=2026-12-04/part-0.parquet",
        "facts/day=2026-12-04/part-1.parquet",
    ]
    assert store.get("facts/day=2026-12-04/part-1.parquet") == b"p1"
    store.delete("facts/day=2026-12-04/part-0.parquet")
    assert store.get("facts/day=2026-12-04/part-0.parquet") is None
    assert store.list("facts") == ["facts/day=2026-12-04/part-1.parquet"]
    assert store.list("nothing-here") == []
