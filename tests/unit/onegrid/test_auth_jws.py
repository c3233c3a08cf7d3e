"""Compact JWS verification: what a valid token is, and every way a forged or stale one is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from onegrid.auth.jws import InvalidToken, VerificationKeys, b64url_encode, load_public_key, sign, verify

SECRET = b"k" * 16 + b"0123456789abcdef0123456789abcdef"
NOW = 1_760_000_000
CLAIMS = {"iss": "onegrid", "aud": "onegrid", "sub": "staff:1", "iat": NOW, "nbf": NOW, "exp": NOW + 600}
HS = VerificationKeys(hs256_secret=SECRET)


def check(token: str, keys: VerificationKeys = HS, **kw: object) -> dict:
    return verify(token, keys, issuer="onegrid", audience="onegrid", now=kw.pop("now", NOW + 1), **kw)  # type: ignore[arg-type]


def forge(header: dict, claims: dict, signature: bytes = b"") -> str:
    enc = lambda d: b64url_encode(json.dumps(d).encode())  # noqa: E731
    return f"{enc(header)}.{enc(claims)}.{b64url_encode(signature)}"


def reason(token: str, keys: VerificationKeys = HS, **kw: object) -> str:
    with pytest.raises(InvalidToken) as refused:
        check(token, keys, **kw)
    return refused.value.reason


def test_hs256_round_trip_and_rfc7515_known_answer() -> None:
    assert check(sign(CLAIMS, SECRET))["sub"] == "staff:1"
    # RFC 7515 appendix A.1: the HMAC over the example's signing input.
    key = base64.urlsafe_b64decode(
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow=="
    )
    signing_input = (
        b"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
        b"eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    )
    assert b64url_encode(hmac.new(key, signing_input, hashlib.sha256).digest()) == (
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    )


def test_eddsa_and_rs256_with_public_keys_by_kid() -> None:
    ed = Ed25519PrivateKey.generate()
    rs = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def pem(k: Ed25519PrivateKey | rsa.RSAPrivateKey) -> str:
        return (
            k.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    keys = VerificationKeys(public_keys={"ed": load_public_key(pem(ed)), "rs": load_public_key(pem(rs))})
    assert check(sign(CLAIMS, ed, kid="ed"), keys)["sub"] == "staff:1"
    assert check(sign(CLAIMS, rs, kid="rs"), keys)["sub"] == "staff:1"
    # Another Ed25519 key's signature does not verify; HS256 is not accepted without a secret.
    assert reason(sign(CLAIMS, Ed25519PrivateKey.generate(), kid="ed"), keys) == "token.bad_signature"
    assert reason(sign(CLAIMS, SECRET), keys) == "token.algorithm_refused"


def test_alg_none_and_algorithm_confusion_are_refused() -> None:
    assert reason(forge({"alg": "none"}, CLAIMS)) == "token.algorithm_refused"
    assert reason(forge({"alg": "HS512"}, CLAIMS, b"x")) == "token.algorithm_refused"
    # The classic confusion: an HS256 token whose "secret" is the server's public key.
    ed = Ed25519PrivateKey.generate()
    public_pem = ed.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    keys = VerificationKeys(public_keys={"ed": ed.public_key()})
    assert reason(sign(CLAIMS, public_pem), keys) == "token.algorithm_refused"
    assert reason(forge({"alg": "HS256", "crit": ["exp"]}, CLAIMS, b"x")) == "token.critical_extension"


@pytest.mark.parametrize(
    ("change", "now", "expected"),
    [
        ({"exp": NOW - 100}, NOW, "token.expired"),
        ({"exp": None}, NOW, "token.exp_missing"),
        ({"exp": "tomorrow"}, NOW, "token.malformed"),
        ({"nbf": NOW + 3600}, NOW, "token.not_yet_valid"),
        ({"iat": NOW + 3600}, NOW, "token.issued_in_future"),
        ({"iss": "someone-else"}, NOW, "token.wrong_issuer"),
        ({"aud": "another-platform"}, NOW, "token.wrong_audience"),
        ({"aud": ["x", "y"]}, NOW, "token.wrong_audience"),
    ],
)
def test_claims_are_checked(change: dict, now: int, expected: str) -> None:
    claims = {k: v for k, v in {**CLAIMS, **change}.items() if v is not None}
    assert reason(sign(claims, SECRET), now=now) == expected


def test_leeway_tolerates_small_skew_only() -> None:
    token = sign({**CLAIMS, "exp": NOW}, SECRET)
    assert check(token, now=NOW + 20)["sub"] == "staff:1"
    assert reason(token, now=NOW + 31) == "token.expired"
    assert check(sign({**CLAIMS, "aud": ["bi", "onegrid"]}, SECRET))["aud"] == ["bi", "onegrid"]


def test_tampered_claims_and_malformed_tokens() -> None:
    token = sign(CLAIMS, SECRET)
    head, _, sig = token.split(".")
    evil = b64url_encode(json.dumps({**CLAIMS, "sub": "admin"}).encode())
    assert reason(f"{head}.{evil}.{sig}") == "token.bad_signature"
    assert reason(token + "=") == "token.malformed"
    assert reason("a.b") == "token.malformed"
    assert reason("x" * 9000) == "token.too_large"
    assert reason("!" + token) == "token.malformed"
    # Claims are read only after the signature verified: a broken payload is a bad signature.
    assert reason(f"{head}.!{evil}.{sig}") == "token.bad_signature"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_is_refused_never_crashes(text: str) -> None:
    with pytest.raises(InvalidToken):
        check(text)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.binary(max_size=64))
def test_random_header_and_claims_parts_are_refused(header: bytes, claims: bytes) -> None:
    with pytest.raises(InvalidToken):
        check(f"{b64url_encode(header)}.{b64url_encode(claims)}.{b64url_encode(b'sig')}")


def hs256(header: dict, claims: dict) -> str:
    enc = lambda d: b64url_encode(json.dumps(d).encode())  # noqa: E731
    signing_input = f"{enc(header)}.{enc(claims)}"
    sig = hmac.new(SECRET, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url_encode(sig)}"


def test_exp_must_be_finite_and_within_the_maximum_lifetime() -> None:
    """An exp of NaN compared false with every time (never expired), and 1e18 lived forever."""
    header = {"alg": "HS256", "typ": "JWT"}
    assert reason(hs256(header, {**CLAIMS, "exp": float("nan")})) == "token.malformed"
    assert reason(hs256(header, {**CLAIMS, "exp": float("inf")})) == "token.malformed"
    assert reason(hs256(header, {**CLAIMS, "exp": 1e18})) == "token.lifetime_too_long"
    no_iat = {k: v for k, v in CLAIMS.items() if k != "iat"}
    assert reason(hs256(header, {**no_iat, "exp": NOW + 8 * 24 * 3600})) == "token.lifetime_too_long"
    assert check(hs256(header, {**CLAIMS, "exp": NOW + 8 * 3600}))["sub"] == "staff:1"


def test_typ_when_present_names_an_access_token() -> None:
    for typ in ("JWT", "at+jwt", "application/at+jwt"):
        assert check(hs256({"alg": "HS256", "typ": typ}, CLAIMS))["sub"] == "staff:1"
    assert check(hs256({"alg": "HS256"}, CLAIMS))["sub"] == "staff:1"
    for typ in ("dpop+jwt", "secevent+jwt", 7):
        assert reason(hs256({"alg": "HS256", "typ": typ}, CLAIMS)) == "token.wrong_type"
