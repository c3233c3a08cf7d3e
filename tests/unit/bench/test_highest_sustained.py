"""The search for the highest rate a stage sustains: a window that fails once must not end the search
below what the stage sustains, and a known failure above bounds it (bisection, not steps)."""

from __future__ import annotations

import asyncio
from typing import Any

from bench.latency import highest_sustained


class Stage:
    """Sustains every rate up to `ceiling`; the windows listed in `hiccups` (by their number) fail."""

    def __init__(self, ceiling: float, hiccups: tuple[int, ...] = ()) -> None:
        self.ceiling, self.hiccups, self.rates = ceiling, hiccups, list[float]()

    async def run(
        self, rate: float, seconds: float, *, drain_s: float, orders: bool = True
    ) -> dict[str, Any]:
        self.rates.append(rate)
        ok = rate <= self.ceiling and len(self.rates) - 1 not in self.hiccups
        return {"rate": rate, "sustained": ok, "sustained_orders": ok}


def search(stage: Stage, start: float, trials: int, **kw: Any) -> float | None:
    best, tried = asyncio.run(highest_sustained(stage, start, seconds=60, trials=trials, drain_s=5, **kw))  # type: ignore[arg-type]
    assert len(tried) == len(stage.rates) <= trials
    return best


def test_a_failure_known_above_is_bisected_to_within_five_percent() -> None:
    stage = Stage(ceiling=620)
    best = search(stage, 200, trials=8, failed_at=1000)
    assert best is not None and 620 / 1.05 <= best <= 620


def test_a_single_failed_window_is_tried_again_before_it_bounds_the_search() -> None:
    # The first window fails once (e.g. the database busy after the overload run before it).
    stage = Stage(ceiling=620, hiccups=(0,))
    best = search(stage, 200, trials=8, failed_at=1000)
    assert best is not None and best >= 620 / 1.05
    assert stage.rates[:2] == [200, 200]


def test_without_a_known_failure_it_steps_up_until_one() -> None:
    stage = Stage(ceiling=400)
    best = search(stage, 200, trials=10)
    assert best is not None and 400 / 1.05 <= best <= 400


def test_nothing_sustained_is_none() -> None:
    assert search(Stage(ceiling=10), 200, trials=4) is None


def test_it_stops_once_the_bracket_is_close() -> None:
    stage = Stage(ceiling=620)
    search(stage, 200, trials=30, failed_at=1000)
    assert len(stage.rates) < 15
