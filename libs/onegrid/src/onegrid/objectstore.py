"""Object storage for files written whole: a local directory (temporary name, fsync, rename) or any
fsspec URL (`s3://bucket/prefix` with s3fs installed, `memory://` in tests). Used by the evaluation's
lake and the console's photo store. Calls block: run them in a thread from async code.

An S3-compatible store is configured as every S3 client is: the URL names bucket and prefix, the
standard environment the rest (AWS_ENDPOINT_URL for a store other than AWS, e.g. MinIO or Ceph;
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION), or the instance's own credentials.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any, Protocol


class ObjectStore(Protocol):
    url: str

    def put(self, path: str, data: bytes, content_type: str | None = None) -> None:
        """Write `data` at `path` (relative to the root) whole and durable before returning; an
        object store keeps `content_type` with the object (a directory knows it by the extension)."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Every file under `prefix`, as paths relative to the root."""
        ...

    def delete(self, path: str) -> None: ...

    def get(self, path: str) -> bytes | None:
        """The bytes at `path`, or None when there is no such file."""
        ...


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def get(self, path: str) -> bytes | None:
        target = self.root / path
        return target.read_bytes() if target.is_file() else None

    def put(self, path: str, data: bytes, content_type: str | None = None) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)  # the rename itself survives a power cut
        finally:
            os.close(fd)

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.exists():
            return []
        return sorted(
            str(p.relative_to(self.root))
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def delete(self, path: str) -> None:
        (self.root / path).unlink(missing_ok=True)


class FsspecStore:
    """Object storage through fsspec (s3fs for S3-compatible stores; memory:// in tests)."""

    def __init__(self, url: str, **options: Any) -> None:
        import fsspec

        self.url = url
        self.fs, root = fsspec.core.url_to_fs(url, **options)
        self.root = root.rstrip("/")
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self._s3 = bool({"s3", "s3a"} & set(protocols))

    def put(self, path: str, data: bytes, content_type: str | None = None) -> None:
        # S3 serves an object with the type it was stored with (a photo opened from the bucket or a
        # CDN in front of it is an image, not application/octet-stream)
        extra = {"ContentType": content_type} if content_type and self._s3 else {}
        self.fs.pipe_file(f"{self.root}/{path}", data, **extra)

    def get(self, path: str) -> bytes | None:
        try:
            data: bytes = self.fs.cat_file(f"{self.root}/{path}")
        except FileNotFoundError:
            return None
        return data

    def list(self, prefix: str) -> list[str]:
        base = f"{self.root}/{prefix}".rstrip("/")
        if not self.fs.exists(base):
            return []
        found = self.fs.find(base)
        root = self.root.lstrip("/")
        return sorted(p.lstrip("/")[len(root) + 1 :] for p in found)

    def delete(self, path: str) -> None:
        self.fs.rm_file(f"{self.root}/{path}")


def open_store(url: str) -> ObjectStore:
    """A local directory for a path or `file://` URL, fsspec for any other URL (s3://, gs://, ...)."""
    if re.match(r"^[a-z][a-z0-9+.-]*://", url) and not url.startswith("file://"):
        return FsspecStore(url)
    return LocalStore(Path(url.removeprefix("file://")).resolve())
