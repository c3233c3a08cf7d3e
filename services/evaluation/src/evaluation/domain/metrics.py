"""From case facts to the figures cities publish, per (dimension, value, granularity, period_start).

Contract: `aggregate(key, facts, definition)` is pure; the same facts give the same row, bit for bit
(sums of integers, ratios of two integers, percentiles that pick a member of the sample), so a
rebuild from offset zero reproduces every table exactly.

Every case counts once per dimension: in the `all` dimension (value `*`, the whole city), and under
its department, grid, street, district, source network and category (a missing value is `none`).
Denominators (contracts/bi/README.md lists them):
- closure_rate, on_time_closure_rate: over `closable` = registered - cancelled - merged (应结案数)
- return_rate: over cases dispatched at least once; rework_rate: over cases resolved at least once;
  reopen_rate: over cases closed at least once; whistle_rate, self_handled_rate, hops_per_case:
  over registered; verification_timeliness: over verification checks.
- Department rows charge each act to its actor (eval.v2, see case_facts): dispatched, returned,
  resolved, reworked and whistled count the cases in which THIS department received an order,
  returned it, resolved it, had a resolution fail verification, was whistled at; the acknowledge and
  resolve samples are its own stints (one value per stint); whistle_rate is over its dispatched
  cases. The case-level figures (registered, closure and on-time rates, reopens, hops, self-handled,
  verification checks) count under the department answerable for the case, its latest one.
- Medians and p90 are `percentile_disc` (nearest rank: the smallest value with at least that share
  of the sample at or below it), as PostgreSQL computes them; a ratio with a zero denominator is null.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Literal, NamedTuple

import msgspec

from evaluation.domain.case_facts import CaseFacts, Stint
from evaluation.domain.periods import GRANULARITIES, instant, period_end, period_start

Dimension = Literal["all", "department", "grid", "street", "district", "network", "category"]
DIMENSIONS: tuple[Dimension, ...] = ("all", "department", "grid", "street", "district", "network", "category")
ALL = "*"
NONE = "none"


class MetricKey(NamedTuple):
    dimension: str
    value: str
    granularity: str
    period_start: date


def dimension_value(f: CaseFacts, dimension: str) -> str:
    if dimension == "all":
        return ALL
    v = {
        "department": f.department,
        "grid": f.grid,
        "street": f.street,
        "district": f.district,
        "network": f.network,
        "category": f.category,
    }[dimension]
    return v or NONE


def values_of(f: CaseFacts, dimension: str) -> set[str]:
    """The units of `dimension` the case counts in: one, except departments, where every department
    charged with an act of the case counts it too."""
    own = dimension_value(f, dimension)
    if dimension != "department":
        return {own}
    return {own, *(s.department or NONE for s in f.stints)}


def keys_of(f: CaseFacts) -> set[MetricKey]:
    """Every metric row the case counts in."""
    return {
        MetricKey(dim, v, g, period_start(f.registered_at, g))
        for dim in DIMENSIONS
        for v in values_of(f, dim)
        for g in GRANULARITIES
    }


class MetricRow(msgspec.Struct, frozen=True, kw_only=True):
    dimension: str
    value: str
    granularity: str
    period_start: date
    registered: int
    cancelled: int
    merged: int
    closable: int
    closed: int
    closure_rate: float | None
    on_time_closed: int
    on_time_closure_rate: float | None
    acknowledge_median_s: float | None
    acknowledge_p90_s: float | None
    resolve_median_s: float | None
    resolve_p90_s: float | None
    dispatched: int
    returned: int
    return_rate: float | None
    resolved: int
    reworked: int
    rework_rate: float | None
    ever_closed: int
    reopened: int
    reopen_rate: float | None
    whistled: int
    whistle_rate: float | None
    hops: int
    hops_per_case: float | None
    self_handled: int
    self_handled_rate: float | None
    verifications: int
    verifications_in_time: int
    verification_timeliness: float | None
    incomplete: int
    rule_versions: tuple[str, ...]
    taxonomy_versions: tuple[str, ...]
    grid_versions: tuple[str, ...]  # the registry versions the counted cases were decided with
    last_event_at: datetime | None  # the latest transition of any case counted (UTC)
    restated: bool  # events after the period's end changed it: a copy taken then is outdated
    definition: str


COLUMNS: tuple[str, ...] = MetricRow.__struct_fields__
LISTS = ("rule_versions", "taxonomy_versions", "grid_versions")
RATES = frozenset(c for c in COLUMNS if c.endswith(("_rate", "_per_case", "_timeliness")))
DURATIONS = frozenset(c for c in COLUMNS if c.endswith("_s"))
# Which way is better, for rankings: rates of trouble and durations rank the smallest first.
LOWER_IS_BETTER = frozenset(
    {"return_rate", "rework_rate", "reopen_rate", "whistle_rate", "hops_per_case", *DURATIONS}
)


def ratio(n: int, d: int) -> float | None:
    return n / d if d else None


def percentile_disc(values: Iterable[float], p: float) -> float | None:
    """The smallest value v with at least a share p of the sample <= v (PostgreSQL percentile_disc)."""
    xs = sorted(values)
    if not xs:
        return None
    return xs[max(0, math.ceil(p * len(xs)) - 1)]


def aggregate(key: MetricKey, facts: Sequence[CaseFacts], definition: str) -> MetricRow:
    """The row for `key` over the facts that count in it (the caller selects them; at least one)."""
    if key.dimension == "department":
        own = [f for f in facts if dimension_value(f, "department") == key.value]
        acts = _charged(key.value, facts)
    else:
        own, acts = list(facts), _case_acts(facts)
    n = len(own)
    cancelled = sum(f.state == "cancelled" for f in own)
    merged = sum(f.state == "merged" for f in own)
    closable = n - cancelled - merged
    closed = sum(f.closed for f in own)
    on_time = sum(f.on_time for f in own)
    ack, res = acts.acknowledge, acts.resolve
    dispatched, returned, resolved = acts.dispatched, acts.returned, acts.resolved
    reworked, whistled = acts.reworked, acts.whistled
    ever_closed = sum(f.first_closed_at is not None for f in own)
    reopened = sum(f.reopens > 0 for f in own)
    hops = sum(f.hops for f in own)
    self_handled = sum(f.self_handled for f in own)
    checks = sum(f.verifications for f in own)
    checks_in_time = sum(f.verifications_in_time for f in own)
    last = max((f.last_event_at for f in facts if f.last_event_at is not None), default=None)
    return MetricRow(
        dimension=key.dimension,
        value=key.value,
        granularity=key.granularity,
        period_start=key.period_start,
        registered=n,
        cancelled=cancelled,
        merged=merged,
        closable=closable,
        closed=closed,
        closure_rate=ratio(closed, closable),
        on_time_closed=on_time,
        on_time_closure_rate=ratio(on_time, closable),
        acknowledge_median_s=percentile_disc(ack, 0.5),
        acknowledge_p90_s=percentile_disc(ack, 0.9),
        resolve_median_s=percentile_disc(res, 0.5),
        resolve_p90_s=percentile_disc(res, 0.9),
        dispatched=dispatched,
        returned=returned,
        return_rate=ratio(returned, dispatched),
        resolved=resolved,
        reworked=reworked,
        rework_rate=ratio(reworked, resolved),
        ever_closed=ever_closed,
        reopened=reopened,
        reopen_rate=ratio(reopened, ever_closed),
        whistled=whistled,
        whistle_rate=ratio(whistled, dispatched if key.dimension == "department" else n),
        hops=hops,
        hops_per_case=ratio(hops, n),
        self_handled=self_handled,
        self_handled_rate=ratio(self_handled, n),
        verifications=checks,
        verifications_in_time=checks_in_time,
        verification_timeliness=ratio(checks_in_time, checks),
        incomplete=sum(not f.complete for f in facts),
        rule_versions=tuple(sorted({f.rule_version for f in facts if f.rule_version})),
        taxonomy_versions=tuple(sorted({f.taxonomy_version for f in facts if f.taxonomy_version})),
        grid_versions=tuple(sorted({f.grid_version for f in facts if f.grid_version})),
        last_event_at=last,
        restated=last is not None and last >= instant(period_end(key.period_start, key.granularity)),  # type: ignore[arg-type]
        definition=definition,
    )


class _Acts(NamedTuple):
    dispatched: int
    returned: int
    resolved: int
    reworked: int
    whistled: int
    acknowledge: list[float]
    resolve: list[float]


def _case_acts(facts: Sequence[CaseFacts]) -> _Acts:
    """What happened to each case, whoever did it (rows other than departments)."""
    return _Acts(
        dispatched=sum(f.hops > 0 for f in facts),
        returned=sum(f.returns > 0 for f in facts),
        resolved=sum(f.resolved_at is not None for f in facts),
        reworked=sum(f.reworks > 0 for f in facts),
        whistled=sum(f.whistles > 0 for f in facts),
        acknowledge=[f.acknowledge_s for f in facts if f.acknowledge_s is not None],
        resolve=[f.resolve_s for f in facts if f.resolve_s is not None],
    )


def _charged(department: str, facts: Sequence[CaseFacts]) -> _Acts:
    """What `department` itself did: its stints' acts, cases counted once each, durations per stint."""
    mine: list[list[Stint]] = [[s for s in f.stints if (s.department or NONE) == department] for f in facts]
    return _Acts(
        dispatched=sum(any(s.index > 0 for s in ss) for ss in mine),
        returned=sum(any(s.returns for s in ss) for ss in mine),
        resolved=sum(any(s.resolutions for s in ss) for ss in mine),
        reworked=sum(any(s.reworks for s in ss) for ss in mine),
        whistled=sum(any(s.whistles for s in ss) for ss in mine),
        acknowledge=[s.acknowledge_s for ss in mine for s in ss if s.acknowledge_s is not None],
        resolve=[s.resolve_s for ss in mine for s in ss if s.resolve_s is not None],
    )


def aggregate_all(
    facts: Iterable[CaseFacts], definition: str, only: set[MetricKey] | None = None
) -> dict[MetricKey, MetricRow]:
    """Rows for every key the facts count in (or only for `only`), each over its own facts."""
    groups: dict[MetricKey, list[CaseFacts]] = {}
    for f in facts:
        for k in keys_of(f):
            if only is None or k in only:
                groups.setdefault(k, []).append(f)
    return {k: aggregate(k, fs, definition) for k, fs in groups.items()}


ZERO_DIMENSIONS = ("department", "grid")  # units with no case in a period still get a row


def zero_rows(
    units: Mapping[str, Sequence[tuple[str, datetime, datetime | None]]],
    periods: Iterable[tuple[str, date]],
    present: set[MetricKey],
    definition: str,
) -> list[MetricRow]:
    """Rows of zeros for every unit (code, valid_from, valid_to) of a dimension that was valid during a
    period and has no row in it: a department or grid without cases shows 0, not nothing."""
    out: list[MetricRow] = []
    for granularity, start in periods:
        lo = instant(start)
        hi = instant(period_end(start, granularity))  # type: ignore[arg-type]
        for dimension, intervals in units.items():
            for code in sorted({c for c, f, t in intervals if f < hi and (t is None or t > lo)}):
                key = MetricKey(dimension, code, granularity, start)
                if key not in present:
                    out.append(aggregate(key, [], definition))
                    present.add(key)
    return out
