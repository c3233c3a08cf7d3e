"""Name-based UUIDs (RFC 4122 version 5) at the rate the hot paths derive them.

``uuid.uuid5`` builds its result through ``UUID.__init__``, which checks its arguments and sets the
version bits one step at a time: ~3 µs, twice for every case event intake derives. ``uuid5`` here is
the same value (tested against ``uuid.uuid5`` for every kind of name) set on the integer in one
expression and stored as ``UUID.__init__`` stores it.
"""

from __future__ import annotations

import hashlib
import uuid

_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))  # the version nibble and the variant bits
_SET_V5 = (5 << 76) | (0x8000 << 48)  # version 5, RFC 4122 variant
_NAMESPACE_BYTES: dict[uuid.UUID, bytes] = {}
_SETATTR = object.__setattr__  # UUID is immutable: __init__ itself stores through object.__setattr__


def uuid5(namespace: uuid.UUID, name: str) -> uuid.UUID:
    """``uuid.uuid5(namespace, name)``."""
    prefix = _NAMESPACE_BYTES.get(namespace)
    if prefix is None:
        prefix = _NAMESPACE_BYTES[namespace] = namespace.bytes
    digest = hashlib.sha1(prefix + name.encode("utf-8")).digest()
    out = object.__new__(uuid.UUID)
    _SETATTR(out, "int", (int.from_bytes(digest[:16], "big") & _CLEAR) | _SET_V5)
    _SETATTR(out, "is_safe", uuid.SafeUUID.unknown)
    return out
