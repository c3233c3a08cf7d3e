"""Signed webhooks: HMAC-SHA256 over `<timestamp>.<delivery id>.<body>`, checked against a replay
window.

Headers sent with every delivery:
  X-OneGrid-Timestamp: Unix seconds when the request was signed
  X-OneGrid-Signature: v2=<hex HMAC-SHA256(secret, timestamp + "." + delivery id + "." + body)>
  X-OneGrid-Delivery:  the delivery id (a receiver dedupes on it; a retry repeats it)
A receiver recomputes the HMAC over the raw body and refuses a timestamp outside the window, so a
captured request cannot be replayed later; the delivery id is signed too, so a capture cannot be
replayed within the window under a new id either (v1 signed only timestamp and body). During a
secret's rotation the receiver holds two secrets and accepts either (`verify` takes both).
`verify` is the receiver's half, shipped for departments.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

TIMESTAMP = "X-OneGrid-Timestamp"
SIGNATURE = "X-OneGrid-Signature"
DELIVERY = "X-OneGrid-Delivery"


def signing_input(timestamp: int, delivery_id: str, body: bytes) -> bytes:
    return str(timestamp).encode("ascii") + b"." + delivery_id.encode() + b"." + body


def sign(secret: bytes, timestamp: int, delivery_id: str, body: bytes) -> str:
    return "v2=" + hmac.new(secret, signing_input(timestamp, delivery_id, body), hashlib.sha256).hexdigest()


def verify(
    secrets: Sequence[bytes],
    timestamp: str,
    signature: str,
    delivery_id: str,
    body: bytes,
    *,
    now: float,
    window_s: float = 300,
) -> str | None:
    """None when authentic under one of `secrets` (current and, while rotating, previous) and fresh;
    otherwise the reason code of the refusal."""
    try:
        ts = int(timestamp)
    except ValueError:
        return "signature.timestamp_invalid"
    if abs(now - ts) > window_s:
        return "signature.outside_replay_window"
    if not delivery_id:
        return "delivery.missing"
    # every secret is tried (no early exit) so timing does not tell which one matched
    matched = [hmac.compare_digest(sign(s, ts, delivery_id, body), signature) for s in secrets]
    return None if any(matched) else "signature.mismatch"
