"""The photo store's thumbnails: what the console's case page shows of a photo, made by the console."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from console.worker.photos import THUMB_PX, PhotoStore, make_thumbnail


def png(width: int, height: int) -> bytes:
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 90)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    head = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", head)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_a_thumbnail_is_a_small_jpeg_of_the_photo_kept_in_proportion() -> None:
    thumb = make_thumbnail(png(800, 600))
    with Image.open(io.BytesIO(thumb)) as im:
        assert im.format == "JPEG" and im.size == (THUMB_PX, THUMB_PX * 3 // 4)


def test_what_is_not_an_image_has_no_thumbnail() -> None:
    with pytest.raises(ValueError, match="image"):
        make_thumbnail(b"%PDF-1.7 not a photo")


async def test_the_store_makes_a_thumbnail_once_and_none_for_a_photo_it_lacks(tmp_path: Path) -> None:
    photos = PhotoStore.open(str(tmp_path))
    data = png(640, 640)
    sha = hashlib.sha256(data).hexdigest()
    await photos.put(sha, "image/png", data)
    first = await photos.thumbnail(sha)
    assert first is not None and len(first) < len(data)
    (tmp_path / "photos" / sha[:2] / f"{sha}.png").unlink()  # from now on only the cache has it
    assert await photos.thumbnail(sha) == first
    assert await photos.thumbnail("0" * 64) is None
