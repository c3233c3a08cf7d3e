"""Per-department webhook secrets and their rotation with overlap.

Contract: a department's current secret is its row in `webhook_secrets` once it has been rotated,
else the secret configured for it (ONEGRID_DISPATCH_WEBHOOKS). Every delivery is signed with the
current secret at the moment of its post (a retry after a rotation is signed with the new one). A
rotation makes a fresh random secret current and keeps the one it replaces as `previous` until
`previous_until`: the department's verifier accepts both until then (onegrid_departments.
RotatingSecret), so no delivery in flight is refused while the new secret is being installed.
Rotations of one department are serialised by its row lock; the new secret is shown once, in the
rotation's answer.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


@dataclass(frozen=True)
class Rotation:
    department: str
    secret: str
    previous_valid_until: datetime
    rotated_at: datetime


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


async def current(conn: AsyncConnection, department: str, configured: str) -> str:
    """The secret deliveries to `department` are signed with now."""
    rotated = await conn.scalar(
        text("SELECT secret FROM webhook_secrets WHERE department = :d"), {"d": department}
    )
    return configured if rotated is None else str(rotated)


async def rotate(
    engine: AsyncEngine, department: str, configured: str, *, now: datetime, overlap_s: float
) -> Rotation:
    """Make a fresh secret current; the one it replaces stays valid for `overlap_s` seconds."""
    fresh, until = new_secret(), now + timedelta(seconds=overlap_s)
    async with engine.begin() as conn:
        # the configured secret as the row to replace, so the first rotation has a previous one too
        await conn.execute(
            text(
                "INSERT INTO webhook_secrets (department, secret, rotated_at) VALUES (:d, :s, :now) "
                "ON CONFLICT (department) DO NOTHING"
            ),
            {"d": department, "s": configured, "now": now},
        )
        await conn.execute(
            text(
                "UPDATE webhook_secrets SET previous_secret = secret, previous_until = :until, "
                "secret = :fresh, rotated_at = :now WHERE department = :d"
            ),
            {"d": department, "fresh": fresh, "until": until, "now": now},
        )
    return Rotation(department, fresh, until, now)
