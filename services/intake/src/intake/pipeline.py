"""The intake pipeline: a batch of legacy records in, case events, dead letters and quarantine out.

Each legacy topic has one adapter (`Adapter`: bytes -> case events, or `Rejected`/`Quarantined`).
A topic with no adapter yet is quarantined with reason `intake.no_adapter`: kept and replayable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from onegrid.kafka import BatchResult, DeadLetter, OutRecord, Record

from intake.domain.errors import Quarantined, Rejected
from intake.settings import Settings

Adapter = Callable[[Record], list[OutRecord]]


class IntakePipeline:
    def __init__(self, *, settings: Settings, adapters: dict[str, Adapter] | None = None) -> None:
        self.settings = settings
        self.adapters: dict[str, Adapter] = dict(adapters or {})

    async def handle(self, records: Sequence[Record]) -> BatchResult:
        result = BatchResult()
        for r in records:
            adapter = self.adapters.get(r.topic)
            if adapter is None:
                result.dead_letters.append(
                    DeadLetter(
                        r, "intake.no_adapter", f"no adapter for topic {r.topic}", "route", "quarantine"
                    )
                )
                continue
            try:
                result.outputs.extend(adapter(r))
            except Rejected as e:
                result.dead_letters.append(DeadLetter(r, e.reason, e.detail, "parse", "dlq"))
            except Quarantined as e:
                result.dead_letters.append(DeadLetter(r, e.reason, e.detail, "map", "quarantine"))
        return result
