"""Rankings (排名) of units by one metric, never judging a unit on a handful of cases.

Contract: `rank(rows, metric, min_cases)` takes the rows of one dimension and period. A unit whose
sample (the metric's own denominator: closable cases for closure rates, dispatched cases for the
return rate, ...; registered cases otherwise) is below `min_cases` is listed as insufficient sample,
not ranked. Units with no value (`none`: no department, no grid) are not units to judge and are left
out. Ranks are competition ranks (1, 2, 2, 4): equal figures share a rank; better first, where
better is higher except for rates of trouble and durations. Ties are listed by unit code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from evaluation.domain.metrics import COLUMNS, LOWER_IS_BETTER, NONE, RATES, MetricRow

SAMPLE_OF: dict[str, str] = {
    "closure_rate": "closable",
    "on_time_closure_rate": "closable",
    "return_rate": "dispatched",
    "rework_rate": "resolved",
    "reopen_rate": "ever_closed",
    "verification_timeliness": "verifications",
}
RANKABLE = frozenset(RATES | {c for c in COLUMNS if c.endswith("_s")})


@dataclass(frozen=True)
class Ranked:
    rank: int
    value: str
    figure: float
    sample: int


@dataclass(frozen=True)
class Unranked:
    value: str
    sample: int
    why: str  # insufficient_sample | no_data


@dataclass
class Ranking:
    metric: str
    min_cases: int
    higher_is_better: bool
    ranked: list[Ranked] = field(default_factory=list)
    unranked: list[Unranked] = field(default_factory=list)


def sample_of(row: MetricRow, metric: str) -> int:
    # A department's whistle rate is over the cases it received (eval.v2: charged to the actor).
    if metric == "whistle_rate" and row.dimension == "department":
        return row.dispatched
    n = getattr(row, SAMPLE_OF.get(metric, "registered"))
    assert isinstance(n, int)
    return n


def rank(rows: Iterable[MetricRow], metric: str, min_cases: int) -> Ranking:
    if metric not in RANKABLE:
        raise ValueError(f"metric must be one of {', '.join(sorted(RANKABLE))}; got {metric!r}")
    higher = metric not in LOWER_IS_BETTER
    out = Ranking(metric=metric, min_cases=min_cases, higher_is_better=higher)
    candidates: list[tuple[float, str, int]] = []
    for row in sorted(rows, key=lambda r: r.value):
        if row.value == NONE:
            continue
        n = sample_of(row, metric)
        figure = getattr(row, metric)
        if n < min_cases:
            out.unranked.append(Unranked(row.value, n, "insufficient_sample"))
        elif figure is None:
            out.unranked.append(Unranked(row.value, n, "no_data"))
        else:
            candidates.append((float(figure), row.value, n))
    candidates.sort(key=lambda c: (-c[0] if higher else c[0], c[1]))
    for i, (figure, value, n) in enumerate(candidates):
        same = i > 0 and candidates[i - 1][0] == figure
        out.ranked.append(Ranked(out.ranked[-1].rank if same else i + 1, value, figure, n))
    return out
