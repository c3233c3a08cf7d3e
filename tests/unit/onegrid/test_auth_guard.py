"""Roles, scopes, API keys, the guard on endpoints, the fail-fast settings, the mint command, and
the limits on public endpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from pydantic import ValidationError

from onegrid.auth import (
    Authenticator,
    AuthSettings,
    InvalidToken,
    Principal,
    Role,
    assert_guarded,
    install,
    mint,
    public,
    require,
)
from onegrid.auth import keys as api_keys
from onegrid.auth.jws import b64url_decode, sign, verify
from onegrid.auth.policy import division_prefix
from onegrid.ratelimit import BodyLimit, RateLimiter
from onegrid.settings import ServiceSettings

SECRET = "unit-test-secret-9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a"


def test_scope_prefixes_follow_the_division_hierarchy() -> None:
    assert division_prefix("321000") == "3210" and division_prefix("320000") == "32"
    assert division_prefix("321003") == "321003" and division_prefix("321003009") == "321003009"
    street = Principal("s", Role.STREET_OPERATOR, ("321003009",)).scope()
    assert street.admits(division="321003009001003") and not street.admits(division="321003010001003")
    city = Principal("c", Role.CITY_OPERATOR, ("321000",)).scope()
    assert city.admits(division="321003009") and not city.admits(division="320100001")
    dept = Principal("d", Role.DEPARTMENT_OPERATOR, departments=("chengguan",)).scope()
    assert dept.admits(departments=["chengguan"]) and not dept.admits(division="321003009")
    assert Principal("a", Role.AUDITOR).scope().unrestricted


def test_scope_as_sql_fails_closed() -> None:
    where, params = Principal("s", Role.STREET_OPERATOR, ("321003009",)).scope().sql(division="code")
    assert where == "((code) LIKE ANY(CAST(:scope_prefixes AS text[])))"
    assert params == {"scope_prefixes": ["321003009%"]}
    dept = Principal("d", Role.DEPARTMENT_OPERATOR, departments=("shuiwu",)).scope()
    assert dept.sql(division="code")[0] == "FALSE"  # no department column given: nothing matches
    where, params = dept.sql(division="code", department="dept = ANY(:departments)")
    assert where == "(dept = ANY(CAST(:scope_departments AS text[])))" and params["scope_departments"] == [
        "shuiwu"
    ]
    assert Principal("a", Role.ADMIN).scope().sql(division="code") == ("TRUE", {})


@pytest.mark.parametrize(
    ("role", "divisions", "departments"),
    [
        (Role.STREET_OPERATOR, (), ()),
        (Role.GRID_WORKER, ("12",), ()),
        (Role.DEPARTMENT_OPERATOR, (), ()),
        (Role.DEPARTMENT_OPERATOR, (), ("Bad Code",)),
    ],
)
def test_scoped_roles_need_a_valid_scope(role: Role, divisions: tuple, departments: tuple) -> None:
    with pytest.raises(ValueError):
        Principal("x", role, divisions, departments)


def test_every_permission_admits_admin_and_names_a_defined_pair() -> None:
    admin = Principal("a", Role.ADMIN)
    bi = Principal("b", Role.BI_READER, ("321000",))
    assert admin.permits("write", "registry") and not bi.permits("write", "registry")
    assert bi.permits("read", "metrics") and not bi.permits("read", "cases")
    with pytest.raises(KeyError):
        admin.permits("fly", "cases")
    with pytest.raises(KeyError):
        require("fly", "cases")


def _app(keys_file: Path | None = None) -> FastAPI:
    app = FastAPI()
    r = APIRouter()

    @r.get("/cases")
    async def cases(p: Principal = Depends(require("read", "cases"))) -> dict:
        return {"role": p.role, "via": p.via}

    @r.get("/open", dependencies=[Depends(public("test"))])
    async def open_() -> dict:
        return {}

    app.include_router(r)
    install(app, AuthSettings(hs256_secret=SECRET, api_keys_file=keys_file), environment="test")
    assert_guarded(app)
    return app


async def _get(app: FastAPI, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        return await c.get(path, headers=headers or {})


async def test_the_guard_answers_401_403_and_200() -> None:
    app = _app()
    none = await _get(app, "/cases")
    assert none.status_code == 401 and none.headers["www-authenticate"].startswith("Bearer")
    bad = await _get(app, "/cases", {"Authorization": "Bearer abc.def.ghi"})
    assert bad.status_code == 401 and "token.malformed" in bad.json()["detail"]
    other = mint(b"another-secret-of-enough-length-000000000", role="admin", subject="x")
    assert (await _get(app, "/cases", {"Authorization": f"Bearer {other}"})).status_code == 401
    bi = mint(SECRET.encode(), role="bi_reader", subject="b", divisions=["321000"])
    refused = await _get(app, "/cases", {"Authorization": f"Bearer {bi}"})
    assert refused.status_code == 403 and "bi_reader may not read cases" in refused.json()["detail"]
    ok = await _get(
        app, "/cases", {"Authorization": f"Bearer {mint(SECRET.encode(), role='auditor', subject='a')}"}
    )
    assert ok.json() == {"role": "auditor", "via": "jwt"}
    assert (await _get(app, "/open")).status_code == 200


async def test_api_keys_are_hashed_at_rest_and_revocable(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    key = api_keys.add(
        path, key_id="dept-1", role=Role.DEPARTMENT_OPERATOR, divisions=[], departments=["shuiwu"]
    )
    assert key not in path.read_text() and api_keys.key_hash(key) in path.read_text()
    app = _app(path)
    assert (await _get(app, "/cases", {"X-API-Key": key})).json() == {
        "role": "department_operator",
        "via": "api_key",
    }
    assert (await _get(app, "/cases", {"X-API-Key": key + "x"})).status_code == 401
    api_keys.revoke(path, "dept-1")
    app.state.authenticator.api_keys._checked = 0.0  # skip the one-second re-read interval
    app.state.authenticator.api_keys._mtime = None
    assert (await _get(app, "/cases", {"X-API-Key": key})).status_code == 401
    with pytest.raises(ValueError):
        api_keys.add(path, key_id="dept-1", role=Role.OPEN311_CLIENT, divisions=[], departments=[])


def test_an_endpoint_without_a_declared_guard_stops_the_app() -> None:
    app = FastAPI()

    @app.get("/forgotten")
    async def forgotten() -> dict:
        return {}

    with pytest.raises(RuntimeError, match="forgotten"):
        assert_guarded(app)


@pytest.mark.parametrize("secret", [None, "changeme", "short", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"])
def test_outside_development_a_missing_or_default_secret_refuses_to_start(
    secret: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ONEGRID_AUTH_HS256_SECRET", raising=False)
    if secret is not None:
        monkeypatch.setenv("ONEGRID_AUTH_HS256_SECRET", secret)
    with pytest.raises(ValidationError, match="ONEGRID_AUTH_HS256_SECRET"):
        ServiceSettings(environment="test")
    ServiceSettings(environment="development")  # development tolerates it (a generated secret)


def test_the_mint_command_prints_a_token_the_services_accept(tmp_path: Path) -> None:
    env = {"ONEGRID_AUTH_HS256_SECRET": SECRET, "ONEGRID_RUN": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "onegrid.auth", "mint", "--role", "street_operator", "--scope", "321003009"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    claims = verify(
        out.stdout.strip(),
        AuthSettings(hs256_secret=SECRET).verification_keys(environment="test"),
        issuer="onegrid",
        audience="onegrid",
    )
    assert claims["role"] == "street_operator" and claims["divisions"] == ["321003009"]
    refused = subprocess.run(
        [sys.executable, "-m", "onegrid.auth", "mint", "--role", "street_operator"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode == 2 and "needs at least one division" in refused.stderr


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(2.0, 3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0  # per client
    now[0] += 0.5
    assert limiter.take("a") == 0.0


async def test_rate_limit_and_body_limit_answer_429_and_413() -> None:
    app = FastAPI()
    limiter = RateLimiter(0.5, 1)

    @app.post("/submit", dependencies=[Depends(limiter.dependency("submit"))])
    async def submit(body: dict) -> dict:
        return body

    limited = BodyLimit(app, default_bytes=1024, paths={"/submit": 64})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(limited), base_url="http://t") as c:
        assert (await c.post("/submit", json={"a": 1})).status_code == 200
        again = await c.post("/submit", json={"a": 1})
        assert again.status_code == 429 and int(again.headers["retry-after"]) >= 1
        big = await c.post(
            "/submit", content=json.dumps({"a": "x" * 100}), headers={"content-type": "application/json"}
        )
        assert big.status_code == 413

        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(10):
                yield b"x" * 20

        streamed = await c.post("/submit", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413


def test_services_default_to_production_where_only_the_identity_providers_tokens_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: development by default (secrets generated, checks skipped), and the one HS256 secret
    every service holds still minted accepted admin tokens beside the identity provider's keys."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    monkeypatch.delenv("ONEGRID_ENVIRONMENT", raising=False)
    monkeypatch.delenv("ONEGRID_AUTH_HS256_SECRET", raising=False)
    with pytest.raises(ValidationError, match="ONEGRID_AUTH_PUBLIC_KEYS"):
        ServiceSettings()
    idp = Ed25519PrivateKey.generate()
    pem = idp.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    monkeypatch.setenv("ONEGRID_AUTH_PUBLIC_KEYS", json.dumps({"idp-1": pem.decode()}))
    settings = ServiceSettings()
    assert settings.environment == "production"
    monkeypatch.setenv("ONEGRID_AUTH_HS256_SECRET", SECRET)
    with pytest.raises(ValidationError, match="refused when ONEGRID_ENVIRONMENT=production"):
        ServiceSettings()
    # Whatever the settings say, production verifies no HS256 token: a service's secret mints nothing.
    both = AuthSettings(hs256_secret=SECRET, public_keys={"idp-1": pem.decode()})
    keys = both.verification_keys(environment="production")
    forged = mint(SECRET.encode(), role="admin", subject="admin:forged")
    with pytest.raises(InvalidToken, match="algorithm_refused"):
        verify(forged, keys, issuer="onegrid", audience="onegrid")
    now = time.time()
    real = sign(
        {"iss": "onegrid", "aud": "onegrid", "sub": "staff:1", "role": "admin", "iat": now, "exp": now + 600},
        idp,
        kid="idp-1",
    )
    assert verify(real, keys, issuer="onegrid", audience="onegrid")["sub"] == "staff:1"


def test_the_signing_secret_rotates_with_overlap_and_tokens_can_be_revoked(tmp_path: Path) -> None:
    old, new = "old-" + SECRET, "new-" + SECRET
    rotating = AuthSettings(hs256_secret=new, hs256_previous_secrets=[old])
    keys = rotating.verification_keys(environment="test")
    for secret in (old, new):
        verify(mint(secret.encode(), role="admin", subject="a"), keys, issuer="onegrid", audience="onegrid")
    after = AuthSettings(hs256_secret=new).verification_keys(environment="test")
    with pytest.raises(InvalidToken, match="bad_signature"):
        verify(mint(old.encode(), role="admin", subject="a"), after, issuer="onegrid", audience="onegrid")

    revoked = tmp_path / "revoked.json"
    auth = Authenticator(AuthSettings(hs256_secret=new, revoked_file=revoked), environment="test")
    leaked, other = (
        mint(new.encode(), role="admin", subject="admin:a"),
        mint(new.encode(), role="admin", subject="b"),
    )
    assert auth.from_token(leaked).subject == "admin:a"
    jti = json.loads(b64url_decode(leaked.split(".")[1]))["jti"]
    revoked.write_text(json.dumps({"jti": [jti]}))
    with pytest.raises(InvalidToken, match=r"token\.revoked"):
        auth.from_token(leaked)
    assert auth.from_token(other).subject == "b"
    revoked.write_text(json.dumps({"subjects": ["b"]}))
    os.utime(revoked, (time.time() + 5, time.time() + 5))  # a second write within the mtime granularity
    with pytest.raises(InvalidToken, match="subject is revoked"):
        auth.from_token(other)
