"""Parser for `legacy.patrol.v1`: a grid worker's patrol report from the phone app (UTF-8 JSON).

Contract: contracts/legacy/patrol.v1.md and patrol.v1.schema.json. `parse_patrol` is pure and total:
for any bytes it returns a `PatrolRecord` or raises `Rejected` with a `patrol.*` reason. The console
builds these records (the worker's id from the verified token, the photos' hashes from the bytes it
stored), so a refusal here means a producer broke the contract, not that a worker typed badly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final, Literal

import msgspec

from intake.domain.errors import Rejected

__all__ = ["MAX_BYTES", "PatrolLocation", "PatrolPhoto", "PatrolRecord", "Worker", "parse_patrol"]

MAX_BYTES: Final = 65_536
UUID: Final = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
SHA256: Final = r"^[0-9a-f]{64}$"


class Worker(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    display: Annotated[str, msgspec.Meta(max_length=100)] = ""


class PatrolLocation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    lat: Annotated[float, msgspec.Meta(ge=3, le=54)]
    lon: Annotated[float, msgspec.Meta(ge=73, le=136)]
    source: Literal["gps", "map"]
    accuracy_m: Annotated[float, msgspec.Meta(ge=0)] | None = None


class PatrolPhoto(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sha256: Annotated[str, msgspec.Meta(pattern=SHA256)]
    ref: Annotated[str, msgspec.Meta(pattern=r"^photos/[0-9a-f]{2}/[0-9a-f]{64}\.(jpg|png|webp)$")]
    media_type: Literal["image/jpeg", "image/png", "image/webp"]
    bytes: Annotated[int, msgspec.Meta(ge=1, le=2 * 1024 * 1024)]


class PatrolRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    report_id: Annotated[str, msgspec.Meta(pattern=UUID)]
    worker: Worker
    grid_code: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{15}([0-9]{3})?$")]
    category: Annotated[str, msgspec.Meta(pattern=r"^[a-z_]+(\.[a-z_]+)+$", max_length=120)]
    description: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    severity: Literal["I", "II", "III", "IV"]
    location: PatrolLocation
    photos: Annotated[tuple[PatrolPhoto, ...], msgspec.Meta(min_length=1, max_length=6)]
    reported_at: datetime
    received_at: datetime


_DECODER: Final = msgspec.json.Decoder(PatrolRecord)


def parse_patrol(raw: bytes) -> PatrolRecord:
    """The record, or `Rejected` (`patrol.too_large`, `patrol.malformed`, `patrol.invalid_value`)."""
    if len(raw) > MAX_BYTES:
        raise Rejected("patrol.too_large", f"{len(raw)} bytes, at most {MAX_BYTES}")
    try:
        record = _DECODER.decode(raw)
    except msgspec.ValidationError as e:
        raise Rejected("patrol.invalid_value", str(e)) from e
    except msgspec.DecodeError as e:
        raise Rejected("patrol.malformed", str(e)) from e
    for name in ("reported_at", "received_at"):
        if getattr(record, name).tzinfo is None:
            raise Rejected("patrol.invalid_value", f"{name} has no UTC offset")
    if not record.description.strip():
        raise Rejected("patrol.invalid_value", "description is blank")
    if len({p.sha256 for p in record.photos}) != len(record.photos):
        raise Rejected("patrol.invalid_value", "the same photo twice")
    if any(not p.ref.endswith(f"/{p.sha256}." + p.ref.rsplit(".", 1)[1]) for p in record.photos):
        raise Rejected("patrol.invalid_value", "a photo's ref does not name its hash")
    return record


def utc(t: datetime) -> datetime:
    return t.astimezone(UTC)
