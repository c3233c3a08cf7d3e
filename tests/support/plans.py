"""PostgreSQL plans in tests: the nodes of `EXPLAIN (FORMAT JSON)` output."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def plan_nodes(explained: Any) -> Iterator[dict[str, Any]]:
    """Every node of a plan, root first: `explained` is what `EXPLAIN (FORMAT JSON)` returns."""
    stack = [explained[0]["Plan"]]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.get("Plans", [])))
