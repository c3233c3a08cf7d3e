"""The receiver's half of OneGrid's signed webhooks, framework-neutral.

Every delivery carries
  X-OneGrid-Timestamp: Unix seconds when dispatch signed the request
  X-OneGrid-Signature: v2=<lower-case hex HMAC-SHA256(secret, "<timestamp>.<delivery id>." + raw body)>
  X-OneGrid-Delivery:  the delivery id; a retry repeats it, so a receiver handles each id once
A receiver recomputes the HMAC over the raw body bytes (never a re-serialised JSON) and refuses a
timestamp further than `WINDOW_S` from its clock, so a captured request cannot be replayed later;
the delivery id is signed, so neither can it be replayed under a new id within the window.

Rotation: when OneGrid rotates a department's secret, the new one signs every delivery from then on
and the previous one stays valid until the expiry given with the new secret. Verify with both
(`RotatingSecret`, or a list of secrets) until then, then drop the previous one.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
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


@dataclass(frozen=True)
class RotatingSecret:
    """A department's secrets while OneGrid rotates it: the current one, and the previous one until
    `previous_until` (Unix seconds), as the rotation's answer gives them."""

    current: bytes
    previous: bytes | None = None
    previous_until: float | None = None

    def valid_at(self, now: float) -> list[bytes]:
        live_previous = self.previous is not None and (
            self.previous_until is None or now < self.previous_until
        )
        return [self.current, self.previous] if live_previous and self.previous else [self.current]


Secrets = bytes | Sequence[bytes] | RotatingSecret


def secrets_at(secret: Secrets, now: float) -> list[bytes]:
    if isinstance(secret, RotatingSecret):
        return secret.valid_at(now)
    if isinstance(secret, bytes | bytearray):
        return [bytes(secret)]
    return list(secret)


def signing_input(timestamp: int, delivery_id: str, body: bytes) -> bytes:
    """The bytes that are signed: the decimal timestamp, ".", the delivery id, ".", the raw body."""
    return str(timestamp).encode("ascii") + b"." + delivery_id.encode() + b"." + body


def sign(secret: bytes, timestamp: int, delivery_id: str, body: bytes) -> str:
    """The X-OneGrid-Signature value for delivery `delivery_id` of `body` signed at `timestamp`."""
    return "v2=" + hmac.new(secret, signing_input(timestamp, delivery_id, body), hashlib.sha256).hexdigest()


def verify(
    secret: Secrets,
    timestamp: str,
    signature: str,
    delivery_id: str,
    body: bytes,
    *,
    now: float,
    window_s: float = WINDOW_S,
) -> str | None:
    """None when authentic under a secret valid at `now` and fresh; otherwise the reason code of
    the refusal."""
    try:
        ts = int(timestamp)
    except ValueError:
        return "signature.timestamp_invalid"
    if abs(now - ts) > window_s:
        return "signature.outside_replay_window"
    if not delivery_id:
        return "delivery.missing"
    # every secret is tried (no early exit) so timing does not tell which one matched
    matched = [
        hmac.compare_digest(sign(s, ts, delivery_id, body), signature) for s in secrets_at(secret, now)
    ]
    return None if any(matched) else "signature.mismatch"


def verify_delivery(
    secret: Secrets,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    window_s: float = WINDOW_S,
) -> Delivery:
    """The delivery described by `headers` (any case of names) and `body`; raises `WebhookRefused`.
    `secret`: the department's secret, or both while it is rotated."""
    h = {k.lower(): v for k, v in headers.items()}
    stamp, mac = h.get(TIMESTAMP.lower()), h.get(SIGNATURE.lower())
    if not stamp or not mac:
        raise WebhookRefused("signature.missing", f"{TIMESTAMP} and {SIGNATURE} are required")
    delivery_id = h.get(DELIVERY.lower(), "")
    if not delivery_id:
        raise WebhookRefused("delivery.missing", f"{DELIVERY} is required")
    clock = time.time() if now is None else now
    reason = verify(secret, stamp, mac, delivery_id, body, now=clock, window_s=window_s)
    if reason is not None:
        raise WebhookRefused(reason)
    return Delivery(delivery_id=delivery_id, timestamp=int(stamp), body=body)
