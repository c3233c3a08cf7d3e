"""Tokens for tests: every service in a test run verifies HS256 tokens with `TEST_SECRET`
(tests/conftest.py puts it into ONEGRID_AUTH_HS256_SECRET before anything is built)."""

from __future__ import annotations

from collections.abc import Iterable

from onegrid.auth import mint

TEST_SECRET = "test-only-hs256-secret-4f9c2a7e1b8d03e6a5c9f1b2d7e8a4c3"


def token(
    role: str = "admin",
    *,
    scope: Iterable[str] = (),
    departments: Iterable[str] = (),
    subject: str | None = None,
    ttl_s: float = 3600,
    now: float | None = None,
) -> str:
    return mint(
        TEST_SECRET.encode(),
        role=role,
        subject=subject or f"{role}:test",
        divisions=scope,
        departments=departments,
        ttl_s=ttl_s,
        now=now,
    )


def bearer(role: str = "admin", **kw: object) -> dict[str, str]:
    """`Authorization` header of a token of `role` (keywords as `token`)."""
    return {"Authorization": f"Bearer {token(role, **kw)}"}  # type: ignore[arg-type]


ADMIN = bearer("admin", subject="admin:test", ttl_s=24 * 3600)
