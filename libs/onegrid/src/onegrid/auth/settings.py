"""Authentication settings (`ONEGRID_AUTH_*`), shared by every service.

| variable | meaning |
|---|---|
| `ONEGRID_AUTH_HS256_SECRET` | HMAC secret for HS256 tokens (at least 32 bytes); development and test only |
| `ONEGRID_AUTH_HS256_PREVIOUS_SECRETS` | JSON list of earlier secrets still accepted while tokens signed with them live (rotation with overlap) |
| `ONEGRID_AUTH_PUBLIC_KEYS` | JSON `{"kid": "<PEM or base64 raw Ed25519>"}`: the identity provider's keys (EdDSA, RS256); list the old and the new key while rotating |
| `ONEGRID_AUTH_REVOKED_FILE` | JSON file of revoked token ids and subjects (revocation.py); re-read when it changes |
| `ONEGRID_AUTH_ISSUER`, `ONEGRID_AUTH_AUDIENCE` | the expected `iss` and `aud` (default `onegrid`, `onegrid`) |
| `ONEGRID_AUTH_LEEWAY_S` | clock skew tolerated on exp/nbf/iat (default 30) |
| `ONEGRID_AUTH_API_KEYS_FILE` | JSON file of hashed API keys (see keys.py); re-read when it changes |

In development a missing secret is generated into `.run/auth-secret` (what `make up` does too). One
HS256 secret is shared by every service, so whoever holds it (any compromised service) could mint an
admin token: in production only the identity provider's asymmetric tokens are accepted, so
`ONEGRID_AUTH_PUBLIC_KEYS` is required and an HS256 secret is refused at start. In the test
environment a strong HS256 secret (or public keys) is required. `check`, called by ServiceSettings,
stops the service at start with a message naming the variable.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from onegrid.auth.jws import PublicKey, VerificationKeys, load_public_key

SECRET_FILE = "auth-secret"
MIN_SECRET_BYTES = 32
_PLACEHOLDERS = ("changeme", "change-me", "change_me", "default", "example", "placeholder", "insecure")
_WEAK = ("changeme", "change-me", "change_me", "secret", "default", "development", "password", "onegrid")


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONEGRID_AUTH_", extra="ignore")

    hs256_secret: SecretStr | None = None
    hs256_previous_secrets: list[SecretStr] = Field(default_factory=list)
    public_keys: dict[str, str] = Field(default_factory=dict)
    issuer: str = "onegrid"
    audience: str = "onegrid"
    leeway_s: float = Field(default=30.0, ge=0, le=300)
    api_keys_file: Path | None = None
    revoked_file: Path | None = None
    # Longest lifetime (exp - iat, or exp - now) of a token accepted: identity providers issue hours;
    # the local stack's admin token lives a week.
    max_token_lifetime_s: float = Field(default=7 * 24 * 3600.0, gt=0)

    @field_validator("public_keys")
    @classmethod
    def _keys_load(cls, v: dict[str, str]) -> dict[str, str]:
        for kid, text in v.items():
            try:
                load_public_key(text)
            except ValueError as exc:
                raise ValueError(f"ONEGRID_AUTH_PUBLIC_KEYS[{kid!r}]: {exc}") from exc
        return v

    def check(self, environment: str) -> None:
        """Refuse to run outside development without a real secret or key (raises ValueError)."""
        if environment == "development":
            return
        secret = self.hs256_secret.get_secret_value() if self.hs256_secret else ""
        if environment == "production":
            if secret or self.hs256_previous_secrets:
                raise ValueError(
                    "ONEGRID_AUTH_HS256_SECRET is refused when ONEGRID_ENVIRONMENT=production: a shared "
                    "secret lets any service that holds it mint admin tokens; configure the identity "
                    "provider's ONEGRID_AUTH_PUBLIC_KEYS instead"
                )
            if not self.public_keys:
                raise ValueError(
                    "ONEGRID_AUTH_PUBLIC_KEYS must be set when ONEGRID_ENVIRONMENT=production "
                    "(the identity provider's EdDSA or RS256 keys); development: ONEGRID_ENVIRONMENT=development"
                )
            return
        if not secret and not self.public_keys:
            raise ValueError(
                f"ONEGRID_AUTH_HS256_SECRET (or ONEGRID_AUTH_PUBLIC_KEYS) must be set when "
                f"ONEGRID_ENVIRONMENT={environment}: every API verifies tokens with it"
            )
        if secret and (len(secret.encode()) < MIN_SECRET_BYTES or _weak(secret)):
            raise ValueError(
                f"ONEGRID_AUTH_HS256_SECRET looks like a default or is shorter than {MIN_SECRET_BYTES} "
                f"bytes; generate one: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )

    def secret(self, *, environment: str) -> bytes | None:
        """The HS256 secret (never in production); in development, read or generated into
        `.run/auth-secret`."""
        if environment == "production":
            return None
        if self.hs256_secret is not None:
            return self.hs256_secret.get_secret_value().encode()
        if environment != "development" or self.public_keys:
            return None
        return development_secret().encode()

    def verification_keys(self, *, environment: str) -> VerificationKeys:
        keys: dict[str, PublicKey] = {kid: load_public_key(pem) for kid, pem in self.public_keys.items()}
        current = self.secret(environment=environment)
        previous = (
            tuple(s.get_secret_value().encode() for s in self.hs256_previous_secrets) if current else ()
        )
        return VerificationKeys(
            hs256_secret=current,
            public_keys=keys,
            previous_hs256_secrets=previous,
            max_lifetime_s=self.max_token_lifetime_s,
        )


def _weak(secret: str) -> bool:
    """A value someone typed rather than generated: a placeholder word, or hardly any distinct characters."""
    lowered = secret.lower()
    return lowered in _WEAK or any(w in lowered for w in _PLACEHOLDERS) or len(set(secret)) < 10


def development_secret() -> str:
    """`.run/auth-secret`, created (mode 600) with 48 random bytes when missing."""
    from onegrid.paths import run_dir

    path = run_dir() / SECRET_FILE
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48) + "\n")
    path.chmod(0o600)  # touch(mode=) does not tighten a file that already exists
    return path.read_text().strip()
