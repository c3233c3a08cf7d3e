"""Compact JWS (RFC 7515) signing and verification of JWTs (RFC 7519), for HS256, EdDSA (Ed25519)
and RS256; nothing else is accepted.

Contract of `verify`: the token is three base64url parts (no padding, no other characters); the
header is a JSON object whose `alg` is one the verifier holds a key for (never `none`; a key is bound
to one algorithm, so an RSA or Ed25519 public key is never tried as an HMAC secret: no algorithm
confusion); `crit` is refused (we understand no extension); the signature checks; the claims are a
JSON object with a finite numeric `exp` in the future but at most `max_lifetime_s` after `iat` (or
now), `nbf`/`iat` finite and not in the future (each with `leeway_s`), `iss` equal to the expected
issuer and `aud` (string or list) containing the expected audience; a `typ` header, when present,
is `JWT` or `at+jwt` (RFC 9068), so another kind of signed object is not taken for an access token.
Any failure raises `InvalidToken` with a reason code; the token itself is never echoed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

MAX_TOKEN_BYTES = 8192
_ACCESS_TOKEN_TYPES = frozenset({"jwt", "at+jwt", "application/at+jwt"})
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
PublicKey = Ed25519PublicKey | RSAPublicKey


class InvalidToken(ValueError):
    """A token that must not be trusted; `reason` is a stable code such as `token.expired`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding (RFC 7515 section 2)."""
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise InvalidToken("token.malformed", "not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("token.malformed", "not base64url") from exc


@dataclass(frozen=True)
class VerificationKeys:
    """What a verifier trusts: an HMAC secret (HS256) and/or public keys by key id."""

    hs256_secret: bytes | None = None
    public_keys: Mapping[str, PublicKey] = field(default_factory=dict)
    # Rotation with overlap: tokens signed with an earlier secret verify until it is removed.
    previous_hs256_secrets: tuple[bytes, ...] = ()
    max_lifetime_s: float = 7 * 24 * 3600.0

    def algorithms(self) -> set[str]:
        algs = {"HS256"} if self.hs256_secret else set()
        for key in self.public_keys.values():
            algs.add("EdDSA" if isinstance(key, Ed25519PublicKey) else "RS256")
        return algs

    def candidates(self, alg: str, kid: str | None) -> list[bytes | PublicKey]:
        if alg == "HS256":
            return [self.hs256_secret, *self.previous_hs256_secrets] if self.hs256_secret else []
        want = Ed25519PublicKey if alg == "EdDSA" else RSAPublicKey
        if kid is not None and kid in self.public_keys:
            keys = [self.public_keys[kid]]
        else:
            keys = list(self.public_keys.values())
        return [k for k in keys if isinstance(k, want)]


def load_public_key(text: str) -> PublicKey:
    """A PEM SubjectPublicKeyInfo (Ed25519 or RSA >= 2048 bits), or base64 of a raw Ed25519 key."""
    data = text.strip().encode()
    if data.startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(data)
    else:
        raw = base64.b64decode(data, validate=True)
        key = Ed25519PublicKey.from_public_bytes(raw)
    if isinstance(key, RSAPublicKey) and key.key_size < 2048:
        raise ValueError("RSA keys shorter than 2048 bits are refused")
    if not isinstance(key, Ed25519PublicKey | RSAPublicKey):
        raise ValueError("only Ed25519 and RSA public keys are supported")
    return key


def sign(
    claims: Mapping[str, Any],
    key: bytes | Ed25519PrivateKey | RSAPrivateKey,
    *,
    kid: str | None = None,
) -> str:
    """A compact JWS of `claims`: HS256 for bytes, EdDSA for Ed25519, RS256 for RSA keys."""
    if isinstance(key, bytes):
        alg = "HS256"
    elif isinstance(key, Ed25519PrivateKey):
        alg = "EdDSA"
    else:
        alg = "RS256"
    header: dict[str, str] = {"alg": alg, "typ": "JWT"}
    if kid:
        header["kid"] = kid
    signing_input = (
        b64url_encode(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url_encode(json.dumps(dict(claims), separators=(",", ":"), ensure_ascii=False).encode())
    ).encode("ascii")
    if isinstance(key, bytes):
        sig = hmac.new(key, signing_input, hashlib.sha256).digest()
    elif isinstance(key, Ed25519PrivateKey):
        sig = key.sign(signing_input)
    else:
        sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return signing_input.decode("ascii") + "." + b64url_encode(sig)


def _json_object(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(part))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidToken("token.malformed", f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidToken("token.malformed", f"{what} is not a JSON object")
    return value


def _signature_ok(alg: str, key: bytes | PublicKey, signing_input: bytes, sig: bytes) -> bool:
    if alg == "HS256":
        assert isinstance(key, bytes)
        return hmac.compare_digest(hmac.new(key, signing_input, hashlib.sha256).digest(), sig)
    try:
        if isinstance(key, Ed25519PublicKey):
            key.verify(sig, signing_input)
        elif isinstance(key, RSAPublicKey):
            key.verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _number(claims: Mapping[str, Any], name: str, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise InvalidToken(f"token.{name}_missing", f"the {name} claim is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidToken("token.malformed", f"{name} is not a NumericDate")
    return float(value)


def verify(
    token: str,
    keys: VerificationKeys,
    *,
    issuer: str,
    audience: str,
    leeway_s: float = 30.0,
    now: float | None = None,
) -> dict[str, Any]:
    """The claims of a valid token; raises InvalidToken otherwise (see the module docstring)."""
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken("token.too_large", f"more than {MAX_TOKEN_BYTES} bytes")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("token.malformed", "a compact JWS has three parts")
    header = _json_object(parts[0], "header")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in keys.algorithms():
        raise InvalidToken("token.algorithm_refused", f"alg {str(alg)[:16]!r} is not accepted")
    if "crit" in header:
        raise InvalidToken("token.critical_extension", "no JWS extension is understood")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in _ACCESS_TOKEN_TYPES):
        raise InvalidToken("token.wrong_type", f"typ {str(typ)[:20]!r} is not an access token")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidToken("token.malformed", "kid is not a string")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    sig = b64url_decode(parts[2])
    if not any(_signature_ok(alg, k, signing_input, sig) for k in keys.candidates(alg, kid)):
        raise InvalidToken("token.bad_signature", "the signature does not verify")
    claims = _json_object(parts[1], "claims")
    t = time.time() if now is None else now
    exp = _number(claims, "exp", required=True)
    assert exp is not None
    if t > exp + leeway_s:
        raise InvalidToken("token.expired", "exp has passed")
    nbf = _number(claims, "nbf", required=False)
    if nbf is not None and t < nbf - leeway_s:
        raise InvalidToken("token.not_yet_valid", "nbf is in the future")
    iat = _number(claims, "iat", required=False)
    if iat is not None and t < iat - leeway_s:
        raise InvalidToken("token.issued_in_future", "iat is in the future")
    if exp - (t if iat is None else iat) > keys.max_lifetime_s:
        raise InvalidToken("token.lifetime_too_long", f"lives longer than {keys.max_lifetime_s:g} s")
    if claims.get("iss") != issuer:
        raise InvalidToken("token.wrong_issuer", "iss is not the configured issuer")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if audience not in audiences:
        raise InvalidToken("token.wrong_audience", "aud does not name this platform")
    return claims
