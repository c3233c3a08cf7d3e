"""The FastAPI side: every endpoint declares what it does, `require(action, resource)`, and gets the
verified `Principal`; `public(reason)` marks the few endpoints anyone may call.

Credentials: `Authorization: Bearer <JWT>` (verified by jws.verify against the configured keys) or
`X-API-Key: <key>` (looked up by hash). No credentials: 401 with `WWW-Authenticate: Bearer`; bad
credentials: 401 naming the reason (`token.expired`, ...); a role without the permission: 403 naming
the role and the permission. `create_app` installs the `Authenticator` and refuses to build an app
with an endpoint that declares neither (`assert_guarded`), so no endpoint is open by omission.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from onegrid.auth.jws import InvalidToken, sign, verify
from onegrid.auth.keys import ApiKeyStore
from onegrid.auth.policy import PERMISSIONS, Principal, Role
from onegrid.auth.revocation import Revocations
from onegrid.auth.settings import AuthSettings

# Every read of personal data, one JSON line each (who, which role, what): its own logger, so it can be
# routed to a store of its own and kept as long as the law asks.
personal_data_log = logging.getLogger("onegrid.personal_data")

UNGUARDED_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
_bearer = HTTPBearer(auto_error=False, description="OAuth2 access token (JWT)")
_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="API key of a department system or Open311 client"
)


class Authenticator:
    """Turns credentials into a Principal; holds the verification keys and the API-key store."""

    def __init__(self, settings: AuthSettings, *, environment: str) -> None:
        settings.check(environment)
        self.settings = settings
        self.keys = settings.verification_keys(environment=environment)
        self.api_keys = ApiKeyStore(settings.api_keys_file)
        self.revocations = Revocations(settings.revoked_file)

    def from_token(self, token: str) -> Principal:
        claims = verify(
            token,
            self.keys,
            issuer=self.settings.issuer,
            audience=self.settings.audience,
            leeway_s=self.settings.leeway_s,
        )
        if why := self.revocations.refused(claims):
            raise InvalidToken("token.revoked", why)
        return principal_of(claims)

    def from_api_key(self, key: str) -> Principal:
        principal = self.api_keys.principal(key)
        if principal is None:
            raise InvalidToken("api_key.unknown", "the API key is unknown or revoked")
        return principal

    def authenticate(self, bearer: str | None, api_key: str | None) -> Principal | None:
        if bearer:
            return self.from_token(bearer)
        if api_key:
            return self.from_api_key(api_key)
        return None


def principal_of(claims: dict[str, Any]) -> Principal:
    try:
        return Principal(
            subject=str(claims.get("sub") or ""),
            role=Role(str(claims.get("role"))),
            divisions=tuple(str(c) for c in claims.get("divisions") or ()),
            departments=tuple(str(c) for c in claims.get("departments") or ()),
        )
    except (ValueError, TypeError) as exc:
        raise InvalidToken("token.bad_claims", str(exc)) from exc


def mint(
    secret: bytes,
    *,
    role: Role | str,
    subject: str,
    divisions: Iterable[str] = (),
    departments: Iterable[str] = (),
    issuer: str = "onegrid",
    audience: str = "onegrid",
    ttl_s: float = 8 * 3600,
    now: float | None = None,
) -> str:
    """An HS256 token (development and tests; production tokens come from the identity provider).
    Each token has its own `jti`, so one token can be revoked."""
    t = int(time.time() if now is None else now)
    principal = Principal(subject, Role(role), tuple(divisions), tuple(departments))  # validates
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": principal.subject,
        "iat": t,
        "nbf": t,
        "exp": t + int(ttl_s),
        "jti": secrets.token_urlsafe(12),
        "role": principal.role.value,
        "divisions": list(principal.divisions),
        "departments": list(principal.departments),
    }
    return sign(claims, secret)


def install(app: FastAPI, settings: AuthSettings, *, environment: str) -> Authenticator:
    auth = Authenticator(settings, environment=environment)
    app.state.authenticator = auth
    return auth


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="onegrid"'})


def require(
    action: str, resource: str, *, optional: bool = False
) -> Callable[..., Awaitable[Principal | None]]:
    """A dependency: the caller's Principal if it may `action` the `resource`. With `optional`, a
    caller without credentials gets None (the endpoint decides: public reads, a form api_key)."""
    if (action, resource) not in PERMISSIONS:
        raise KeyError(f"no permission ({action}, {resource}) in onegrid.auth.policy.PERMISSIONS")

    async def guard(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        api_key: Annotated[str | None, Depends(_api_key)],
    ) -> Principal | None:
        auth: Authenticator | None = getattr(request.app.state, "authenticator", None)
        if auth is None:  # fail closed: an app built without create_app/install
            raise HTTPException(500, "authentication is not installed on this app")
        try:
            principal = auth.authenticate(bearer.credentials if bearer else None, api_key)
        except InvalidToken as exc:
            raise _unauthorized(str(exc)) from None
        if principal is None:
            if optional:
                return None
            raise _unauthorized("credentials required: Authorization: Bearer <token> or X-API-Key")
        if not principal.permits(action, resource):
            raise HTTPException(403, f"role {principal.role} may not {action} {resource}")
        request.state.principal = principal
        return principal

    guard.onegrid_guard = (action, resource)  # type: ignore[attr-defined]
    return guard


def public(reason: str) -> Callable[[], None]:
    """A dependency marking an endpoint open to anyone (state why: it is what a reviewer reads)."""

    def open_to_all() -> None:
        return None

    open_to_all.onegrid_guard = ("public", reason)  # type: ignore[attr-defined]
    return open_to_all


def _guards(dependant: Any) -> Iterable[Any]:
    for dep in dependant.dependencies:
        if getattr(dep.call, "onegrid_guard", None):
            yield dep.call.onegrid_guard
        yield from _guards(dep)


def assert_guarded(app: FastAPI) -> None:
    """Raise if an endpoint declares neither `require(...)` nor `public(...)`."""
    open_routes = [
        f"{sorted(route.methods or ())} {route.path}"
        for route in app.routes
        if isinstance(route, APIRoute)
        and route.path not in UNGUARDED_PATHS
        and not any(True for _ in _guards(route.dependant))
    ]
    if open_routes:
        raise RuntimeError(f"endpoints without require()/public(): {', '.join(open_routes)}")


def log_personal_data_read(principal: Principal, what: str, items: Iterable[object] = ()) -> None:
    """Record that `principal` was shown personal data: `what` (an endpoint, a case) and which items."""
    shown = [str(i) for i in items]
    personal_data_log.info(
        "personal data read by %s (%s): %s %s",
        principal.subject,
        principal.role.value,
        what,
        ",".join(shown[:50]) + (f" (+{len(shown) - 50})" if len(shown) > 50 else ""),
    )


def caller(request: Request) -> Principal | None:
    """The principal `require` put on the request (None on public endpoints)."""
    return getattr(request.state, "principal", None)
