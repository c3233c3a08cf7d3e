"""The grid workers' photos in object storage, content-addressed (`photos/<ab>/<sha256>.<ext>`):
a local directory by default, any S3-compatible store by an fsspec URL (onegrid.objectstore), each
object with its content type. The same bytes are stored once, whoever sends them and however often;
bytes that are not the hash they are stored under are refused before anything is written. The
console's case page shows thumbnails the console makes of them (JPEG, longest side THUMB_PX)."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections import OrderedDict

from PIL import Image, ImageOps, UnidentifiedImageError

from console.domain.work import MEDIA_EXT, StoredPhoto, photo_ref
from onegrid.objectstore import ObjectStore, open_store

THUMB_PX = 320
# A phone's downscaled photo is at most 1280 px a side; far more is a decompression bomb, not a photo.
MAX_PIXELS = 50_000_000
KEEP_THUMBS = 2_000  # about 20 KB each: the thumbnails of the cases on the operators' screens


def make_thumbnail(data: bytes, px: int = THUMB_PX) -> bytes:
    """A JPEG of the photo whose longest side is `px` (never enlarged), turned upright by its EXIF
    orientation. ValueError for bytes that are not an image or an image too large to be a photo."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_PIXELS:
                raise ValueError(f"a {im.width} x {im.height} image is not a phone's photo")
            im.draft("RGB", (px, px))  # JPEG: decode at a fraction of the size
            upright = ImageOps.exif_transpose(im)
            upright.thumbnail((px, px))
            out = io.BytesIO()
            upright.convert("RGB").save(out, "JPEG", quality=80, optimize=True)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise ValueError(f"the bytes are not an image the console can read ({type(e).__name__})") from e


class PhotoStore:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._sizes: dict[str, int] = {}
        self._thumbs: OrderedDict[str, bytes] = OrderedDict()  # least recently shown first out

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

    async def thumbnail(self, sha256: str) -> bytes | None:
        """The photo's thumbnail (made once, then kept while it is shown), None without the photo.
        ValueError when the stored bytes are no image."""
        if sha256 in self._thumbs:
            self._thumbs.move_to_end(sha256)
            return self._thumbs[sha256]
        found = await self.find(sha256)
        if found is None:
            return None
        thumb = await asyncio.to_thread(make_thumbnail, found[1])
        self._thumbs[sha256] = thumb
        while len(self._thumbs) > KEEP_THUMBS:
            self._thumbs.popitem(last=False)
        return thumb
