"""The intake core alone (no Kafka, one process): records per second as its case book fills.

Incidents come `apart` seconds apart, densely enough that thousands of recent cases share a
correlation window; each chunk's rate is shown with the number of recent cases the book held before
it. Correlation should cost about the same with ten recent cases as with ten thousand."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.feeds import FeedStream, seeded_view


def book_growth(
    feed: str, *, chunks: int, chunk: int, batch: int = 500, apart: timedelta = timedelta(seconds=0.5)
) -> dict[str, Any]:
    from intake.bootstrap import intake_parts
    from intake.domain.normalize import Provenance
    from intake.domain.process import Inbound
    from onegrid.envelope import header_dict
    from onegrid.settings import KafkaSettings

    parts = intake_parts(KafkaSettings(), client_id="bench-core")
    parts.view.records = seeded_view().records
    parts.view.spatial_version += 1
    parts.view.grid_index()
    intake = parts.pipeline.intake
    stream = FeedStream(feed, seed=5, apart=apart)
    rows = []
    for _ in range(chunks):
        records = stream.take(chunk)
        held = sum(len(b) for b in intake.book.recent.values())
        started = time.perf_counter()
        for i in range(0, chunk, batch):
            inbound = [
                Inbound(
                    feed, r.value, Provenance("bench", 0, i + k, datetime.now(UTC)), header_dict(r.headers)
                )
                for k, r in enumerate(records[i : i + batch])
            ]
            intake.process(inbound).apply()
        rows.append({"open_cases_before": held, "per_s": round(chunk / (time.perf_counter() - started))})
    return {"feed": feed, "chunk": chunk, "apart_s": apart.total_seconds(), "rows": rows}
