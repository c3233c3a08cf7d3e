"""The intake core alone (no Kafka, one process): records per second as its case book grows.

Every case the intake opens stays a correlation candidate (nothing calls `IntakePipeline.prune`), and
each new record is compared with every open case of its family, so the cost per record grows with
the number of cases taken in so far. This section shows that curve, chunk after chunk of one feed."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from bench.feeds import FeedStream, seeded_view


def book_growth(feed: str, *, chunks: int, chunk: int, batch: int = 500) -> dict[str, Any]:
    from intake.bootstrap import assemble
    from intake.domain.normalize import Provenance
    from intake.domain.process import Inbound
    from onegrid.envelope import header_dict
    from onegrid.settings import KafkaSettings

    parts = assemble(KafkaSettings(), client_id="bench-core")
    parts.view.records = seeded_view().records
    parts.view.spatial_version += 1
    parts.view.grid_index()
    intake = parts.pipeline.intake
    stream = FeedStream(feed, seed=5)
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
    return {"feed": feed, "chunk": chunk, "rows": rows}
