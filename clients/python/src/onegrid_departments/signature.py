"""The receiver's half of OneGrid's signed webhooks, framework-neutral.

Every delivery carries
  X-OneGrid-Timestamp: Unix seconds when dispatch signed the request
  X-OneGrid-Signature: v1=<lower-case hex HMAC-SHA256(secret, "<timestamp>." + raw body)>
  X-OneGrid-Delivery:  the delivery id; a retry repeats it, so a receiver handles each id once
A receiver recomputes the HMAC over the raw body bytes (never a re-serialised JSON) and refuses a
timestamp further than `WINDOW_S` from its clock, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass

TIMESTAMP = "X-OneGrid-Timestamp"
SIGNATURE = "X-OneGrid-Signature"
DELIVERY = "X-OneGrid-Delivery"
WINDOW_S = 300.0


class WebhookRefused(Exception):
    """A delivery that must be answered 401; `reason` is one of the codes in the guide."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Delivery:
    """An authentic, fresh delivery: its id (dedupe on it), signing time and raw body."""

    delivery_id: str
    timestamp: int
    body: bytes


def signing_input(timestamp: int, body: bytes) -> bytes:
    """The bytes that are signed: the decimal timestamp, one ".", the raw body."""
    return str(timestamp).encode("ascii") + b"." + body


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The X-OneGrid-Signature value for `body` signed at `timestamp`."""
    return "v1=" + hmac.new(secret, signing_input(timestamp, body), hashlib.sha256).hexdigest()


def verify(
    secret: bytes, timestamp: str, signature: str, body: bytes, *, now: float, window_s: float = WINDOW_S
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


def verify_delivery(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    window_s: float = WINDOW_S,
) -> Delivery:
    """The delivery described by `headers` (any case of names) and `body`; raises `WebhookRefused`."""
    h = {k.lower(): v for k, v in headers.items()}
    stamp, mac = h.get(TIMESTAMP.lower()), h.get(SIGNATURE.lower())
    if not stamp or not mac:
        raise WebhookRefused("signature.missing", f"{TIMESTAMP} and {SIGNATURE} are required")
    reason = verify(secret, stamp, mac, body, now=time.time() if now is None else now, window_s=window_s)
    if reason is not None:
        raise WebhookRefused(reason)
    delivery_id = h.get(DELIVERY.lower(), "")
    if not delivery_id:
        raise WebhookRefused("delivery.missing", f"{DELIVERY} is required")
    return Delivery(delivery_id=delivery_id, timestamp=int(stamp), body=body)
