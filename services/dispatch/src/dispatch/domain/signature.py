"""Signed webhooks: HMAC-SHA256 over `<timestamp>.<body>`, checked against a replay window.

Headers sent with every delivery:
  X-OneGrid-Timestamp: Unix seconds when the request was signed
  X-OneGrid-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
  X-OneGrid-Delivery:  the delivery id (a receiver dedupes on it; a retry repeats it)
A receiver recomputes the HMAC over the raw body and refuses a timestamp outside the window, so a
captured request cannot be replayed later. `verify` is the receiver's half, shipped for departments.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP = "X-OneGrid-Timestamp"
SIGNATURE = "X-OneGrid-Signature"
DELIVERY = "X-OneGrid-Delivery"


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(
    secret: bytes, timestamp: str, signature: str, body: bytes, *, now: float, window_s: float = 300
) -> str | None:
    """None when authentic and fresh; otherwise the reason code of the refusal."""
    try:
        ts = int(timestamp)
    except ValueError:
        return "signature.timestamp_invalid"
    if abs(now - ts) > window_s:
        return "signature.outside_replay_window"
    if not hmac.compare_digest(sign(secret, ts, body), signature):
        return "signature.mismatch"
    return None
