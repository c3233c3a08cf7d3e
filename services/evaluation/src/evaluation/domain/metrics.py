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
from typing import Any, Literal, NamedTuple

import msgspec

from evaluation.domain.case_facts import CaseFacts
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


class Counts(msgspec.Struct, frozen=True, kw_only=True):
    """The additive figures of a row: a unit's sums over its cases."""

    registered: int
    cancelled: int
    merged: int
    closed: int
    on_time_closed: int
    ever_closed: int
    reopened: int
    hops: int
    self_handled: int
    verifications: int
    verifications_in_time: int
    dispatched: int
    returned: int
    resolved: int
    reworked: int
    whistled: int
    incomplete: int


COUNTS: tuple[str, ...] = Counts.__struct_fields__


class Member(Counts, frozen=True, kw_only=True):
    """One case's contribution to the rows of one unit (a dimension's value), what a row is combined
    from: its counts, the durations it adds to the samples, its versions and its latest transition.
    In a department charged with acts of a case it is not answerable for, the case-level counts are 0
    (only its acts, durations, versions and completeness count there)."""

    acknowledge_s: tuple[float, ...]
    resolve_s: tuple[float, ...]
    rule_version: str | None
    taxonomy_version: str | None
    grid_version: str | None
    last_event_at: datetime | None


class Totals(Counts, frozen=True, kw_only=True):
    """What a row is computed from: its members combined (`combine`, or the same in SQL)."""

    acknowledge_median_s: float | None
    acknowledge_p90_s: float | None
    resolve_median_s: float | None
    resolve_p90_s: float | None
    rule_versions: tuple[str, ...]
    taxonomy_versions: tuple[str, ...]
    grid_versions: tuple[str, ...]
    last_event_at: datetime | None


# A member's durations -> the row's percentiles of them; a member's version -> the row's set of them.
QUANTILES: dict[str, dict[str, float]] = {
    "acknowledge_s": {"acknowledge_median_s": 0.5, "acknowledge_p90_s": 0.9},
    "resolve_s": {"resolve_median_s": 0.5, "resolve_p90_s": 0.9},
}
VERSIONS = {
    "rule_version": "rule_versions",
    "taxonomy_version": "taxonomy_versions",
    "grid_version": "grid_versions",
}


def member(f: CaseFacts, dimension: str, value: str) -> Member:
    """The contribution of case `f` to the rows of unit `value` of `dimension` (one it counts in)."""
    own = dimension != "department" or dimension_value(f, "department") == value
    if dimension == "department":
        mine = [s for s in f.stints if (s.department or NONE) == value]
        dispatched = any(s.index > 0 for s in mine)
        returned = any(s.returns for s in mine)
        resolved = any(s.resolutions for s in mine)
        reworked = any(s.reworks for s in mine)
        whistled = any(s.whistles for s in mine)
        ack = tuple(s.acknowledge_s for s in mine if s.acknowledge_s is not None)
        res = tuple(s.resolve_s for s in mine if s.resolve_s is not None)
    else:
        dispatched, returned, resolved = f.hops > 0, f.returns > 0, f.resolved_at is not None
        reworked, whistled = f.reworks > 0, f.whistles > 0
        ack = (f.acknowledge_s,) if f.acknowledge_s is not None else ()
        res = (f.resolve_s,) if f.resolve_s is not None else ()
    return Member(
        registered=int(own),
        cancelled=int(own and f.state == "cancelled"),
        merged=int(own and f.state == "merged"),
        closed=int(own and f.closed),
        on_time_closed=int(own and f.on_time),
        ever_closed=int(own and f.first_closed_at is not None),
        reopened=int(own and f.reopens > 0),
        hops=f.hops if own else 0,
        self_handled=int(own and f.self_handled),
        verifications=f.verifications if own else 0,
        verifications_in_time=f.verifications_in_time if own else 0,
        dispatched=int(dispatched),
        returned=int(returned),
        resolved=int(resolved),
        reworked=int(reworked),
        whistled=int(whistled),
        incomplete=int(not f.complete),
        acknowledge_s=ack,
        resolve_s=res,
        rule_version=f.rule_version or None,
        taxonomy_version=f.taxonomy_version or None,
        grid_version=f.grid_version or None,
        last_event_at=f.last_event_at,
    )


def members_of(f: CaseFacts) -> dict[tuple[str, str], Member]:
    """The case's contribution to every unit it counts in, by (dimension, value); in each of them it
    counts in the periods containing its registration (`keys_of`)."""
    return {(d, v): member(f, d, v) for d in DIMENSIONS for v in values_of(f, d)}


def combine(members: Sequence[Member]) -> Totals:
    """Sums of the counts, percentiles of the pooled durations, the sorted set of versions and the
    latest transition: what `metric_member` rows give in SQL (store.py), in Python."""
    counts: dict[str, Any] = {c: sum(getattr(m, c) for m in members) for c in COUNTS}
    quantiles: dict[str, Any] = {}
    for sample, columns in QUANTILES.items():
        pooled = [x for m in members for x in getattr(m, sample)]
        quantiles |= {column: percentile_disc(pooled, p) for column, p in columns.items()}
    versions: dict[str, Any] = {
        many: tuple(sorted({v for m in members if (v := getattr(m, one))})) for one, many in VERSIONS.items()
    }
    last = max((m.last_event_at for m in members if m.last_event_at is not None), default=None)
    return Totals(**counts, **quantiles, **versions, last_event_at=last)


def aggregate(key: MetricKey, facts: Sequence[CaseFacts], definition: str) -> MetricRow:
    """The row for `key` over the facts that count in it (the caller selects them)."""
    return row_of(key, combine([member(f, key.dimension, key.value) for f in facts]), definition)


def row_of(key: MetricKey, t: Totals, definition: str) -> MetricRow:
    """The row for `key` from its members' totals: the counts, and the ratios of them."""
    closable = t.registered - t.cancelled - t.merged
    last = t.last_event_at
    return MetricRow(
        dimension=key.dimension,
        value=key.value,
        granularity=key.granularity,
        period_start=key.period_start,
        registered=t.registered,
        cancelled=t.cancelled,
        merged=t.merged,
        closable=closable,
        closed=t.closed,
        closure_rate=ratio(t.closed, closable),
        on_time_closed=t.on_time_closed,
        on_time_closure_rate=ratio(t.on_time_closed, closable),
        acknowledge_median_s=t.acknowledge_median_s,
        acknowledge_p90_s=t.acknowledge_p90_s,
        resolve_median_s=t.resolve_median_s,
        resolve_p90_s=t.resolve_p90_s,
        dispatched=t.dispatched,
        returned=t.returned,
        return_rate=ratio(t.returned, t.dispatched),
        resolved=t.resolved,
        reworked=t.reworked,
        rework_rate=ratio(t.reworked, t.resolved),
        ever_closed=t.ever_closed,
        reopened=t.reopened,
        reopen_rate=ratio(t.reopened, t.ever_closed),
        whistled=t.whistled,
        whistle_rate=ratio(t.whistled, t.dispatched if key.dimension == "department" else t.registered),
        hops=t.hops,
        hops_per_case=ratio(t.hops, t.registered),
        self_handled=t.self_handled,
        self_handled_rate=ratio(t.self_handled, t.registered),
        verifications=t.verifications,
        verifications_in_time=t.verifications_in_time,
        verification_timeliness=ratio(t.verifications_in_time, t.verifications),
        incomplete=t.incomplete,
        rule_versions=t.rule_versions,
        taxonomy_versions=t.taxonomy_versions,
        grid_versions=t.grid_versions,
        last_event_at=last,
        restated=last is not None and last >= instant(period_end(key.period_start, key.granularity)),  # type: ignore[arg-type]
        definition=definition,
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
