"""onegrid.ids.uuid5 is uuid.uuid5: value, version, variant, and behaviour as a UUID."""

from __future__ import annotations

import pickle
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onegrid.ids import uuid5

NAMESPACES = [uuid.NAMESPACE_URL, uuid.NAMESPACE_DNS, uuid.UUID("6f1c9a52-3f7e-4c0a-9d55-0b7c2f1e8a31")]


@given(st.sampled_from(NAMESPACES), st.text())
def test_equals_the_standard_library_for_every_name(namespace: uuid.UUID, name: str) -> None:
    ours, theirs = uuid5(namespace, name), uuid.uuid5(namespace, name)
    assert ours == theirs and ours.int == theirs.int and str(ours) == str(theirs)
    assert ours.version == 5 and ours.variant == uuid.RFC_4122
    assert hash(ours) == hash(theirs) and ours.is_safe is theirs.is_safe


def test_behaves_as_a_uuid() -> None:
    u = uuid5(uuid.NAMESPACE_URL, "公园路 12 号")
    assert pickle.loads(pickle.dumps(u)) == u
    assert uuid.UUID(str(u)) == u and {u: 1}[uuid.uuid5(uuid.NAMESPACE_URL, "公园路 12 号")] == 1
    with pytest.raises(TypeError):
        u.int = 0  # type: ignore[misc]
