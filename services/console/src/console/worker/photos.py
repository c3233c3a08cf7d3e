"""The grid workers' photos in object storage, content-addressed (`photos/<ab>/<sha256>.<ext>`):
a local directory by default, any S3-compatible store by an fsspec URL (onegrid.objectstore), each
object with its content type. The same bytes are stored once, whoever sends them and however often;
bytes that are not the hash they are stored under are refused before anything is written."""

from __future__ import annotations

import asyncio
import hashlib

from console.domain.work import MEDIA_EXT, StoredPhoto, photo_ref
from onegrid.objectstore import ObjectStore, open_store


class PhotoStore:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._sizes: dict[str, int] = {}

    @classmethod
    def open(cls, url: str) -> PhotoStore:
        return cls(open_store(url))

    async def put(self, sha256: str, media_type: str, data: bytes) -> StoredPhoto:
        """Stores `data` under its hash whole and durable (a second put of the same bytes is a no-op).
        ValueError when `sha256` is not the bytes' own or the type is not a photo's."""
        ref = photo_ref(sha256, media_type)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError("the bytes' SHA-256 is not the one they are stored under")
        if await self.size(ref) != len(data):
            await asyncio.to_thread(self.store.put, ref, data, media_type)
            self._sizes[ref] = len(data)
        return StoredPhoto(sha256, ref, media_type, len(data))

    async def size(self, ref: str) -> int | None:
        if ref in self._sizes:
            return self._sizes[ref]
        data = await asyncio.to_thread(self.store.get, ref)
        if data is None:
            return None
        self._sizes[ref] = len(data)
        return len(data)

    async def find(self, sha256: str) -> tuple[str, bytes] | None:
        """(media type, bytes) of the photo with this hash, whatever its format."""
        for media in MEDIA_EXT:
            data = await asyncio.to_thread(self.store.get, photo_ref(sha256, media))
            if data is not None:
                return media, data
        return None
