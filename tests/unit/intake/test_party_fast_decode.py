"""parse_party reads most records with msgspec's decoder and the rest with the standard library's
(`_fast_load` returns None): for any input both readings give the same record or the same refusal,
reason and detail, so the fast reading changes nothing but the time it takes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intake.domain.errors import Rejected
from intake.domain.feeds.party import record
from intake.domain.feeds.party.record import PartyRecord, parse_party

EXAMPLES = Path(__file__).resolve().parents[3] / "contracts" / "legacy" / "examples" / "party"
BASE: dict[str, Any] = json.loads((EXAMPLES / "valid-fire-volunteer-numeric-coordinates.json").read_bytes())
SAMPLES = sorted(EXAMPLES.glob("*.json"))

Outcome = PartyRecord | tuple[str, str]


def outcome(raw: bytes) -> Outcome:
    try:
        return parse_party(raw)
    except Rejected as refusal:
        return (refusal.reason, refusal.detail)


def standard_outcome(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    with monkeypatch.context() as patched:
        patched.setattr(record, "_fast_load", lambda raw: None)
        return outcome(raw)


def assert_same(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    assert outcome(raw) == standard_outcome(raw, monkeypatch), raw


_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**25), max_value=10**25)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["1e400", "-1e400", "1e-400", "NaN", "Infinity", "-0", "1.5E3", "0.1"]).map(
        lambda t: _Raw(t)
    )
)


class _Raw(str):
    """Text put into the document as it is (numbers and literals json.dumps would not write)."""


def _key_text(key: str, escape: bool) -> str:
    return json.dumps(key, ensure_ascii=escape)


def _write(value: object, escape: bool) -> str:
    if isinstance(value, _Raw):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_write(v, escape) for v in value) + "]"
    if isinstance(value, tuple):  # an object as key-value pairs, so a key may come twice
        return "{" + ", ".join(f"{_key_text(k, escape)}: {_write(v, escape)}" for k, v in value) + "}"
    return json.dumps(value, ensure_ascii=escape)


_VALUE = st.recursive(
    _SCALAR,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(
            st.tuples(st.sampled_from(["k", "a:b", "\ud800", "x"]) | st.text(max_size=3), inner), max_size=3
        ).map(tuple)
    ),
    max_leaves=8,
)
_KEYS = st.sampled_from([*sorted(BASE), "fssj", "wgbm", "tp", "extra", "a:b"])


@st.composite
def documents(draw: Callable[..., Any]) -> bytes:
    """A valid record with some keys replaced, dropped, added or given twice, written with or without
    \\u escapes: most draws are near the contract's edges, where the two readings could part."""
    pairs: list[tuple[str, object]] = list(BASE.items())
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["replace", "drop", "add", "repeat"]))
        if action == "drop" and pairs:
            pairs.pop(draw(st.integers(0, len(pairs) - 1)))
        elif action == "replace" and pairs:
            at = draw(st.integers(0, len(pairs) - 1))
            pairs[at] = (pairs[at][0], draw(_VALUE))
        elif action == "repeat" and pairs:
            pairs.append(pairs[draw(st.integers(0, len(pairs) - 1))])
        else:
            pairs.append((draw(_KEYS), draw(_VALUE)))
    if draw(st.booleans()):
        pairs.append(("tp", ["https://dj.example.cn/upload/a.jpg"]))
    return _write(tuple(pairs), draw(st.booleans())).encode("utf-8", "surrogatepass")


@settings(max_examples=2000, deadline=None)
@given(documents())
def test_fast_and_standard_readings_agree_on_near_valid_records(raw: bytes) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert_same(raw, monkeypatch)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=512))
def test_fast_and_standard_readings_agree_on_arbitrary_bytes(raw: bytes) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert_same(raw, monkeypatch)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_fast_and_standard_readings_agree_on_the_samples(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_same(path.read_bytes(), monkeypatch)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"rjbh": "a", "rjbh": "a"}',
        b'{"rjbh": "a", "r\\u006abh": "b"}',
        b'{"rjbh": "a", "x": {"k": 1, "k": 2}}',
        b'{"x": 123456789012345678901}',
        b'{"x": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}',
        b'{"x": "\\ud800"}',
        b'{"x": 1e400}',
        b'{"x": NaN}',
    ],
)
def test_the_cases_msgspec_does_not_judge_itself(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_same(raw, monkeypatch)
    assert isinstance(outcome(raw), tuple)


def test_a_plain_record_takes_the_fast_reading() -> None:
    raw = json.dumps(BASE, ensure_ascii=False).encode()
    assert record._fast_load(raw) == BASE


def test_records_with_photo_urls_and_nested_unknown_keys_take_the_fast_reading() -> None:
    document = {**BASE, "tp": ["https://dj.example.cn/a.jpg"], "ext": {"a:b": [{"c": "d:e"}]}}
    assert record._fast_load(json.dumps(document, ensure_ascii=False).encode()) == document
