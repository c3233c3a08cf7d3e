"""What validating CAP against the OASIS CAP 1.2 schema costs (one process, no Kafka): the whole
``parse_alert`` of the bench's alerts, and within it the schema step alone (``cap_schema.validate`` on
the same alerts' parsed trees and bytes, as ``parse_alert`` calls it), medians of a few rounds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from bench.feeds import FeedStream

T = TypeVar("T")


def _us_each(items: Sequence[T], step: Callable[[T], object]) -> float:
    started = time.perf_counter()
    for item in items:
        step(item)
    return (time.perf_counter() - started) / len(items) * 1e6


def cap_schema_cost(*, alerts: int = 2000, rounds: int = 5) -> dict[str, Any]:
    import defusedxml.ElementTree as SafeElementTree

    from intake.domain.feeds.cap.alert import parse_alert
    from intake.domain.feeds.cap.schema import validate

    values = [r.value for r in FeedStream("cap", seed=11).take(alerts)]
    trees = [(SafeElementTree.fromstring(v), v) for v in values]
    whole = statistics.median(_us_each(values, parse_alert) for _ in range(rounds))
    schema = statistics.median(
        _us_each(trees, lambda tree: validate(tree[0], document=tree[1])) for _ in range(rounds)
    )
    return {
        "alerts": alerts,
        "rounds": rounds,
        "mean_bytes": round(sum(map(len, values)) / len(values)),
        "parse_us": round(whole, 1),
        "schema_us": round(schema, 1),
        "schema_share": round(schema / whole, 3),
    }
