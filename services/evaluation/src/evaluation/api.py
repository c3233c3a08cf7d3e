"""Evaluation HTTP API: metric rows (JSON, CSV, Parquet), rankings and one case's facts, scoped by role.

Every query is validated: an unknown dimension, granularity or metric is 422 naming it; a scope that
may not see what it asks for is 403 saying why. The caller's scope comes from its verified token
(onegrid.auth: role and division codes or departments); the `scope` query parameter may narrow it
(a city operator asks for `street:321003009`) but never widen it (403).
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date, timedelta
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Query, Response
from sqlalchemy import text

from evaluation import export
from evaluation.dimensions import Dimensions
from evaluation.domain.dimensions import KINDS, columns
from evaluation.domain.dimensions import rows as dimension_table
from evaluation.domain.metrics import DIMENSIONS, ZERO_DIMENSIONS, MetricKey, MetricRow, zero_rows
from evaluation.domain.periods import GRANULARITIES, is_period_start
from evaluation.domain.ranking import RANKABLE, rank
from evaluation.domain.scope import Scope, ScopeError, entitled
from evaluation.domain.workers import worker_figures
from evaluation.store import ReadModels
from onegrid.auth import Principal, require
from onegrid.provided import Provided
from onegrid.topics import CASE_LIFECYCLE

DimensionQ = Literal["all", "department", "grid", "street", "district", "network", "category"]
GranularityQ = Literal["day", "week", "month"]
assert set(DimensionQ.__args__) == set(DIMENSIONS) and set(GranularityQ.__args__) == set(GRANULARITIES)  # type: ignore[attr-defined]


def caller_scope(
    principal: Annotated[Principal, Depends(require("read", "metrics"))],
    scope: Annotated[
        str | None,
        Query(
            description="Whose figures, within the caller's own scope: `city`, `district:<6>`, `street:<9>`, "
            "`grid:<15>`, `department:<code>`; default the caller's scope"
        ),
    ] = None,
) -> Scope:
    held = entitled(principal.divisions, principal.departments, unrestricted=principal.unrestricted)
    if not held:
        raise HTTPException(
            403, f"role {principal.role} with scope {list(principal.divisions)} has no figures"
        )
    if scope is None:
        if len(held) > 1:
            raise HTTPException(422, f"choose a scope: one of {', '.join(map(str, held))}")
        return held[0]
    try:
        wanted = Scope.parse(scope)
    except ScopeError as e:
        raise HTTPException(422, f"scope: {e}") from e
    if not any(h.covers(wanted) for h in held):
        raise HTTPException(403, f"scope {wanted} is outside yours ({', '.join(map(str, held))})")
    return wanted


ScopeDep = Annotated[Scope, Depends(caller_scope)]
# Days a case can have been registered on (beyond, local midnight is no instant Python can hold).
FIRST_DAY, LAST_DAY = date(1990, 1, 1), date(2999, 12, 31)
ReaderDep = Annotated[Principal, Depends(require("read", "metrics"))]
DimensionName = Literal["departments", "divisions", "grids", "staff"]
assert set(DimensionName.__args__) == set(KINDS)  # type: ignore[attr-defined]


@dataclasses.dataclass(frozen=True)
class RowFilter:
    dimension: str | None = None
    value: str | None = None
    granularity: str | None = None
    since: date | None = None
    until: date | None = None
    limit: int = 10_000


def row_filter(
    dimension: DimensionQ | None = None,
    value: str | None = None,
    granularity: GranularityQ | None = None,
    since: Annotated[date | None, Query(alias="from", description="First period_start included")] = None,
    until: Annotated[date | None, Query(alias="to", description="Last period_start included")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> RowFilter:
    return RowFilter(dimension, value, granularity, since, until, limit)


FilterDep = Annotated[RowFilter, Depends(row_filter)]


@dataclasses.dataclass(frozen=True)
class EvaluationDeps:
    """What the endpoints work with, bound by `router`."""

    models: ReadModels
    registry: Dimensions
    lifecycle_topic: str
    default_min_cases: int


deps: Provided[EvaluationDeps] = Provided("evaluation")
Deps = Annotated[EvaluationDeps, Depends(deps)]
routes = APIRouter()


async def select(d: EvaluationDeps, scope: Scope, f: RowFilter) -> list[MetricRow]:
    if f.dimension is not None and not scope.sees_dimension(f.dimension):
        raise HTTPException(403, f"scope {scope} cannot see figures split by {f.dimension}")
    rows = await d.models.metrics(
        scope=scope,
        dimension=f.dimension,
        value=f.value,
        granularity=f.granularity,
        since=f.since,
        until=f.until,
        limit=f.limit,
    )
    return (rows + await zeros(d, scope, f, rows))[: f.limit]


async def zeros(d: EvaluationDeps, scope: Scope, f: RowFilter, rows: list[MetricRow]) -> list[MetricRow]:
    """Zero rows for the departments and grids in the registry without a case in a period."""
    dims = [dim for dim in ZERO_DIMENSIONS if f.dimension in (None, dim) and scope.sees_dimension(dim)]
    if not dims:
        return []
    units = {dim: await d.registry.unit_intervals(dim) for dim in dims}
    units = {
        dim: [u for u in us if (f.value is None or u[0] == f.value) and scope.admits(dim, u[0])]
        for dim, us in units.items()
    }
    present = {MetricKey(r.dimension, r.value, r.granularity, r.period_start) for r in rows}
    periods = await d.models.periods(f.granularity, f.since, f.until)
    extra = zero_rows(units, periods, present, d.models.definition)
    return sorted(extra, key=lambda r: (r.dimension, r.granularity, r.period_start, r.value))


async def meta(d: EvaluationDeps) -> dict[str, Any]:
    return export.as_of_dict(await d.models.as_of(d.lifecycle_topic))


@routes.get("/metrics")
async def metrics(scope: ScopeDep, f: FilterDep, d: Deps) -> dict[str, Any]:
    """Metric rows (contracts/bi/README.md defines every column) that the caller's scope may see,
    with the as-of they reflect (computed_at, the next offset of each partition of the lifecycle
    topic, the definition; `at` is UTC, periods are Asia/Shanghai days)."""
    rows = await select(d, scope, f)
    return {
        "scope": str(scope),
        "as_of": await meta(d),
        "count": len(rows),
        "rows": msgspec.to_builtins(rows),
    }


@routes.get("/metrics.csv")
async def metrics_csv(scope: ScopeDep, f: FilterDep, d: Deps) -> Response:
    """The same rows as CSV (UTF-8, `#` lines with the as-of, header row, empty = null, version
    lists joined by `;`)."""
    body = export.to_csv(await select(d, scope, f), await meta(d))
    return _file(body.encode(), "metrics.csv")


@routes.get("/metrics.parquet")
async def metrics_parquet(scope: ScopeDep, f: FilterDep, d: Deps) -> Response:
    """The same rows as Parquet (typed columns; the as-of in the file's metadata `onegrid.as_of`)."""
    return _file(export.to_parquet(await select(d, scope, f), await meta(d)), "metrics.parquet")


@routes.get("/facts/{table}.parquet")
async def facts(
    table: Literal["cases", "stints"],
    scope: ScopeDep,
    d: Deps,
    since: Annotated[date, Query(alias="from", description="First local day of registration")],
    until: Annotated[date | None, Query(alias="to", description="Last local day (default: from)")] = None,
) -> Response:
    """Case facts in bulk: one row per case (`cases`) or per department stint (`stints`) of the
    cases registered on the local days from..to (at most 92), as the lake holds them by day."""
    last = until or since
    if not 0 <= (last - since).days < 92:
        raise HTTPException(422, "from..to must span 1 to 92 days")
    if since < FIRST_DAY or last > LAST_DAY:
        raise HTTPException(422, f"days must lie between {FIRST_DAY} and {LAST_DAY}")
    by_day = await d.models.facts_registered_on(
        [since + timedelta(days=i) for i in range((last - since).days + 1)]
    )
    chosen = [f for day in sorted(by_day) for f in by_day[day] if scope.admits_case(f)]
    write = export.facts_parquet if table == "cases" else export.stints_parquet
    return _file(write(chosen, d.models.definition, await meta(d)), f"{table}.parquet")


@routes.get("/dimensions/{name}.csv")
async def dimension_csv(name: DimensionName, principal: ReaderDep, d: Deps) -> Response:
    rows = await dimension_rows(d, name, principal)
    body = export.table_csv(rows, columns(KINDS[name]), export.as_of_dict(None))
    return _file(body.encode(), f"{name}.csv")


@routes.get("/dimensions/{name}.parquet")
async def dimension_parquet(name: DimensionName, principal: ReaderDep, d: Deps) -> Response:
    rows = await dimension_rows(d, name, principal)
    return _file(export.dimension_parquet(KINDS[name], rows, export.as_of_dict(None)), f"{name}.parquet")


# After the .csv and .parquet routes: `{name}` alone would match `departments.csv` too.
@routes.get("/dimensions/{name}")
async def dimension_json(name: DimensionName, principal: ReaderDep, d: Deps) -> dict[str, Any]:
    """Every version of the registry's departments, divisions, grids or staff with its validity
    interval [valid_from, valid_to) (a type 2 slowly changing dimension); staff names and phones
    masked unless the caller's role sees personal data."""
    rows = await dimension_rows(d, name, principal)
    return {
        "dimension": name,
        "as_of": export.as_of_dict(None),
        "personal_data": principal.sees_personal_data,
        "count": len(rows),
        "rows": msgspec.to_builtins(rows),
    }


async def dimension_rows(d: EvaluationDeps, name: str, principal: Principal) -> list[dict[str, Any]]:
    kind = KINDS[name]
    return dimension_table(kind, await d.registry.versions(kind), personal_data=principal.sees_personal_data)


@routes.get("/rankings")
async def rankings(
    scope: ScopeDep,
    d: Deps,
    dimension: DimensionQ,
    metric: Annotated[str, Query(description=f"One of: {', '.join(sorted(RANKABLE))}")],
    period: GranularityQ = "month",
    period_start: Annotated[date | None, Query(description="Default: the latest period with figures")] = None,
    min_cases: Annotated[
        int | None, Query(ge=1, description="Units with a smaller sample are not ranked")
    ] = None,
) -> dict[str, Any]:
    """Units of `dimension` ranked by `metric` in one period; small units listed as insufficient sample."""
    if metric not in RANKABLE:
        raise HTTPException(422, f"metric {metric!r} cannot be ranked; one of: {', '.join(sorted(RANKABLE))}")
    if dimension == "all":
        raise HTTPException(422, "dimension 'all' has a single unit (the city): nothing to rank")
    if not scope.sees_dimension(dimension):
        raise HTTPException(403, f"scope {scope} cannot rank units by {dimension}")
    if period_start is not None and not is_period_start(period_start, period):
        raise HTTPException(422, f"period_start {period_start} does not start a {period}")
    start = period_start or await d.models.latest_period(dimension, period)
    rows = (
        []
        if start is None
        else await select(d, scope, RowFilter(dimension, None, period, start, start, 100_000))
    )
    ranking = rank(rows, metric, min_cases or d.default_min_cases)
    return {
        "scope": str(scope),
        "dimension": dimension,
        "period": period,
        "period_start": start.isoformat() if start else None,
        "definition": rows[0].definition if rows else d.models.definition,
        **dataclasses.asdict(ranking),
    }


@routes.get("/workers")
async def workers(
    scope: ScopeDep,
    d: Deps,
    since: Annotated[date | None, Query(alias="from", description="First day (UTC) of acts counted")] = None,
    until: Annotated[date | None, Query(alias="to", description="Last day (UTC) of acts counted")] = None,
) -> dict[str, Any]:
    """The grid workers' figures (网格员考核) of the caller's scope: patrol reports that opened a
    case, cases handled on the spot, checks made and their times (domain/workers.py)."""
    if not scope.sees_dimension("grid"):
        raise HTTPException(403, f"scope {scope} has no grid workers' figures")
    sql = (
        "SELECT body::text FROM lifecycle_event WHERE body #>> '{actor,kind}' = 'staff' "
        "OR body ->> 'to_state' = 'resolved'"
    )
    async with d.models.engine.connect() as conn:
        bodies = [msgspec.json.decode(row[0]) for row in await conn.execute(text(sql))]

    def counted(e: dict[str, Any]) -> bool:
        grid = (e.get("dimensions") or {}).get("grid")
        day = str(e.get("at", ""))[:10]
        in_period = (since is None or day >= since.isoformat()) and (
            until is None or day <= until.isoformat()
        )
        # the lifecycle contract makes dimensions.grid a division code (a string) when present
        return (
            isinstance(grid, str)
            and bool(grid)
            and scope.admits("grid", grid)
            and (in_period or e.get("to_state") == "resolved")
        )

    rows = worker_figures(e for e in bodies if counted(e))
    return {"scope": str(scope), "definition": "workers.v1", "workers": [w.to_json() for w in rows]}


@routes.get("/cases/{case_id}")
async def case_facts(case_id: str, scope: ScopeDep, d: Deps) -> dict[str, Any]:
    """The facts one case contributes to the figures (how its on-time flag, durations and counts came out)."""
    try:
        facts = await d.models.case_facts(str(_uuid(case_id)))
    except ValueError as e:
        raise HTTPException(422, f"case_id: {e}") from e
    if facts is None or not scope.admits_case(facts):
        raise HTTPException(404, f"no case {case_id} in scope {scope}")
    return msgspec.to_builtins(facts)  # type: ignore[no-any-return]


@routes.get("/definitions")
async def definitions(
    _: Annotated[Principal, Depends(require("read", "metrics"))], d: Deps
) -> dict[str, Any]:
    """The rules every figure is computed under and the choices the API offers."""
    return {
        "definition": d.models.definition,
        "policy": dataclasses.asdict(d.models.policy),
        "dimensions": list(DIMENSIONS),
        "granularities": list(GRANULARITIES),
        "rankable_metrics": sorted(RANKABLE),
        "d.default_min_cases": d.default_min_cases,
        "period_time_zone": "UTC+08:00",
        "times": export.TIMES,
        "rows_under_other_definitions": await d.models.other_definitions(),
        "guide": "contracts/bi/README.md",
    }


def router(
    models: ReadModels,
    dimensions: Dimensions | None = None,
    *,
    lifecycle_topic: str = CASE_LIFECYCLE,
    default_min_cases: int = 20,
) -> APIRouter:
    bound = EvaluationDeps(
        models, dimensions or Dimensions(models.engine), lifecycle_topic, default_min_cases
    )
    r = APIRouter(prefix="/v1", tags=["evaluation"], dependencies=[deps.bind(bound)])
    r.include_router(routes)
    return r


def _file(body: bytes, name: str) -> Response:
    media = "text/csv; charset=utf-8" if name.endswith(".csv") else "application/vnd.apache.parquet"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a UUID") from None
