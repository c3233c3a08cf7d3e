"""Dispatch HTTP API: departments' feedback, command-centre operators' queries and actions.

Every action is validated: a malformed body is 422 naming the field, an unknown case 404, an action
the state machine refuses 409 with the reason code (e.g. `transition.case_closed`). Feedback is
idempotent by feedback_id; operator actions by an optional Idempotency-Key header. Every string of a
body is bounded, so nothing a caller sends can grow an event past what Kafka takes.

Access (onegrid.auth): every query carries the caller's scope in its WHERE clause, so a street
operator or grid worker reads and acts on the cases of its divisions only and a department on the
cases dispatched to it (its current department or a live order); a case outside the scope is a 404,
as if it did not exist. A department posts feedback for itself only; a non-admin acts in its own name:
the actor's kind and id come from the verified token (a body naming another actor, or choosing its
kind, is refused with 403); only an admin (the command centre's tools) may act for someone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch import webhook_secrets, webhooks
from dispatch.desk import Desk, Result
from dispatch.domain.facts import Actor, decode_feedback
from dispatch.domain.lifecycle import Command
from dispatch.domain.states import Action, State
from onegrid.auth import Principal, Role, require
from onegrid.provided import Provided

# The case's most specific division code and its departments, for the scope predicate.
CASE_DIVISION = (
    "COALESCE(c.body #>> '{facts,division,micro_grid}', c.grid, c.body #>> '{facts,division,community}', "
    "c.body #>> '{facts,division,street}', c.body #>> '{facts,division,district}')"
)
CASE_DEPARTMENTS = (
    "c.department = ANY(:departments) OR EXISTS (SELECT 1 FROM jsonb_array_elements("
    "COALESCE(c.body -> 'orders', '[]'::jsonb)) o WHERE o ->> 'department' = ANY(:departments))"
)
Reader = Annotated[Principal, Depends(require("read", "cases"))]
Actor_ = Annotated[Principal, Depends(require("act", "cases"))]
Feeder = Annotated[Principal, Depends(require("feedback", "cases"))]


def in_scope(principal: Principal) -> tuple[str, dict[str, object]]:
    """The WHERE fragment (over `cases c`) of the cases `principal` may see."""
    return principal.scope().sql(division=CASE_DIVISION, department=CASE_DEPARTMENTS)


REASON = r"^[a-z0-9_]+(\.[a-z0-9_]+)*$"
OPERATOR_ACTIONS = [
    "dispatch",
    "reassign",
    "arbitrate",
    "escalate",
    "suspend",
    "resume",
    "merge",
    "unmerge",
    "cancel",
    "self_handle",
    "verify",
    "rework",
    "reopen",
]


ActorKind = Literal["system", "staff", "department", "citizen"]
# The actor a role acts as; an admin's tools may name another (see `acting_actor`).
KIND_OF_ROLE: dict[Role, ActorKind] = {Role.DEPARTMENT_OPERATOR: "department", Role.ADMIN: "system"}


class ActorIn(BaseModel):
    kind: ActorKind | None = Field(
        default=None, description="Taken from the token; only an admin may set it."
    )
    id: str = Field(
        min_length=1, max_length=200, description="The caller's own subject (an admin may name another)."
    )
    display: str = Field(default="", max_length=100, description="Masked display name, e.g. 李*")


class ActionIn(BaseModel):
    actor: ActorIn | None = Field(default=None, description="Default: the caller, from its token.")
    reason: str | None = Field(default=None, pattern=REASON, max_length=120)
    note: str | None = Field(default=None, max_length=4000)
    department: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_-]{1,40}$")
    merge_into: str | None = Field(default=None, pattern=r"^[0-9a-f-]{36}$")
    evidence: list[Annotated[str, Field(min_length=1, max_length=1024)]] = Field(
        default_factory=list, max_length=50, description="Evidence references (object-store keys)."
    )


def acting_actor(principal: Principal, given: ActorIn | None) -> Actor:
    """Who acts: the verified caller. A non-admin's body may repeat its own id and kind, never
    choose others (403); an admin acting for someone names them."""
    kind: ActorKind = KIND_OF_ROLE.get(principal.role, "staff")
    if given is None:
        return Actor(kind=kind, id=principal.subject, display="")
    if principal.role == Role.ADMIN:
        return Actor(kind=given.kind or "staff", id=given.id, display=given.display)
    if given.id != principal.subject:
        raise HTTPException(
            403, f"actor.id must be the caller ({principal.subject}): one acts in one's own name"
        )
    if given.kind is not None and given.kind != kind:
        raise HTTPException(403, f"actor.kind is {kind} for role {principal.role}: the token decides it")
    return Actor(kind=kind, id=principal.subject, display=given.display)


def _answer(result: Result) -> JSONResponse:
    body: dict[str, Any] = {"outcome": result.outcome, "detail": result.detail}
    if result.case is not None:
        body.update(case_id=result.case.case_id, state=result.case.state.value, seq=result.case.seq)
    status = 409 if result.outcome.startswith("refused:") else 200
    if result.outcome == "refused:transition.case_unknown":
        status = 404
    return JSONResponse(body, status_code=status)


@dataclass(frozen=True)
class DispatchDeps:
    """What the endpoints work with, bound by `router`."""

    engine: AsyncEngine
    desk: Desk
    stuck_after: int


deps: Provided[DispatchDeps] = Provided("dispatch")
Deps = Annotated[DispatchDeps, Depends(deps)]
routes = APIRouter()


async def visible(conn: Any, case_id: str, principal: Principal) -> bool:
    where, params = in_scope(principal)
    sql = f"SELECT 1 FROM cases c WHERE c.case_id::text = :c AND {where}"
    return (await conn.scalar(text(sql), {"c": case_id, **params})) is not None


@routes.post("/feedback")
async def feedback(request: Request, principal: Feeder, d: Deps) -> JSONResponse:
    """A department's feedback (feedback.v1.json): acknowledge, progress, resolve, return; a
    department system answers for its own department only."""
    try:
        fb = decode_feedback(await request.body())
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as e:
        raise HTTPException(422, f"feedback invalid: {e}") from e
    if principal.role != Role.ADMIN:
        if fb.department not in principal.departments:
            raise HTTPException(
                403, f"feedback for {fb.department} from a caller of {', '.join(principal.departments)}"
            )
        if (fb.actor.kind, fb.actor.id) != ("department", principal.subject):
            raise HTTPException(
                403,
                f"feedback actor must be the caller (department {principal.subject}), "
                f"not {fb.actor.kind} {fb.actor.id[:80]}",
            )
    result = await d.desk.feedback(fb)
    if principal.role != Role.ADMIN and result.case is not None and not result.applied:
        async with d.engine.connect() as conn:
            if not await visible(conn, str(fb.case_id), principal):
                # a refusal about someone else's case says why, never the case's state
                result = Result(result.outcome, None, result.detail)
    return _answer(result)


@routes.post("/cases/{case_id}/{action}")
async def act(
    case_id: str,
    action: str,
    body: ActionIn,
    principal: Actor_,
    d: Deps,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            description="Makes the action repeatable: per caller, so no one else's key can clash.",
        ),
    ] = None,
) -> JSONResponse:
    """An operator's or grid worker's action on a case (one of OPERATOR_ACTIONS) in its scope."""
    if action not in OPERATOR_ACTIONS:
        raise HTTPException(404, f"unknown action {action!r}; one of {', '.join(OPERATOR_ACTIONS)}")
    actor = acting_actor(principal, body.actor)
    async with d.engine.connect() as conn:
        if not await visible(conn, case_id, principal):
            raise HTTPException(404, f"no case {case_id} in your scope")
        # a merge target must exist and be the caller's too: no merging into a case unseen
        if body.merge_into is not None and not await visible(conn, body.merge_into, principal):
            raise HTTPException(404, f"no case {body.merge_into} to merge into in your scope")
    cmd = Command(
        Action(action),
        actor=actor,
        reason=body.reason,
        note=body.note,
        department=body.department,
        merge_into=body.merge_into,
        evidence=len(body.evidence),
        evidence_refs=tuple(body.evidence),
    )
    key = None if idempotency_key is None else Desk.action_key(principal.subject, idempotency_key)
    return _answer(await d.desk.act(case_id, cmd, key))


@routes.get("/cases")
async def cases(
    principal: Reader,
    d: Deps,
    state: State | None = None,
    grid: str | None = None,
    department: str | None = None,
    overdue: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Cases in the caller's scope by state, grid, department; `overdue` = a running deadline
    passed, or escalated."""
    where, scope_params = in_scope(principal)
    sql = (
        "SELECT case_id::text, state, department, tier, grid, hops, updated_at FROM cases c WHERE "
        "(CAST(:state AS text) IS NULL OR state = :state) AND (CAST(:grid AS text) IS NULL OR grid = :grid) "
        "AND (CAST(:dept AS text) IS NULL OR department = :dept) AND (NOT :overdue OR state = 'escalated' OR "
        "EXISTS (SELECT 1 FROM deadlines d WHERE d.case_id = c.case_id AND d.status = 'running' "
        f"AND d.due_at < clock_timestamp())) AND {where} ORDER BY updated_at DESC LIMIT :limit"
    )
    params = {
        **scope_params,
        "state": state.value if state else None,
        "grid": grid,
        "dept": department,
        "overdue": overdue,
        "limit": limit,
    }
    async with d.engine.connect() as conn:
        return [dict(x) for x in (await conn.execute(text(sql), params)).mappings()]


@routes.get("/cases/{case_id}")
async def case(case_id: str, principal: Reader, d: Deps) -> dict[str, Any]:
    """The case document and its transitions in order (404 outside the caller's scope). Dispatch
    holds no reporter data (domain/facts.py never decodes it): the reporter is read from the
    audit trail by roles that need it."""
    where, params = in_scope(principal)
    async with d.engine.connect() as conn:
        body = await conn.scalar(
            text(f"SELECT body FROM cases c WHERE c.case_id::text = :c AND {where}"),
            {"c": case_id, **params},
        )
        if body is None:
            raise HTTPException(404, f"no case {case_id} in your scope")
        rows = await conn.execute(
            text(
                "SELECT seq, from_state, to_state, action, reason, at, deadline_id::text FROM transitions "
                "WHERE case_id::text = :c ORDER BY seq"
            ),
            {"c": case_id},
        )
        return {"case": body, "transitions": [dict(x) for x in rows.mappings()]}


@routes.get("/messages/{message_id}")
async def message(message_id: str, principal: Reader, d: Deps) -> dict[str, Any]:
    """What became of a case event, a feedback or an action: applied, noted, or refused:<reason>,
    and its namespace (`source`: case, feedback, action; legacy from before the namespaces); a
    message about no case the caller can see is not found. One id may be used in several
    namespaces: the caller's own message (its department's feedback, its own action) comes first."""
    where, params = in_scope(principal)
    sql = (
        "SELECT p.outcome, p.case_id::text, p.at, p.source FROM processed p "
        "LEFT JOIN cases c ON c.case_id = p.case_id "
        f"WHERE p.message_id = :m AND {where} ORDER BY "
        "((p.source = 'feedback' AND p.caller = ANY(:own_departments)) "
        "OR (p.source = 'action' AND p.caller = :own_subject)) DESC, p.source = 'legacy', p.at LIMIT 1"
    )
    own = {"own_departments": list(principal.departments), "own_subject": principal.subject}
    async with d.engine.connect() as conn:
        row = (await conn.execute(text(sql), {"m": message_id, **params, **own})).first()
    if row is None:
        raise HTTPException(404, f"message {message_id} not seen")
    return dict(row._mapping)


@routes.post("/departments/{department}/webhook-secret")
async def rotate_webhook_secret(
    department: str,
    _: Annotated[Principal, Depends(require("rotate", "webhook_secrets"))],
    d: Deps,
    overlap_s: Annotated[int, Query(ge=0, le=30 * 86400)] = 86400,
) -> dict[str, Any]:
    """Rotate a department's webhook secret: a fresh secret (shown only here) signs every
    delivery from now on; the previous one stays valid for `overlap_s` seconds, until
    `previous_valid_until`, while the department installs the new one (its verifier accepts
    both until then)."""
    hook = d.desk.outlets.webhooks.get(department)
    if hook is None:
        raise HTTPException(404, f"no webhook configured for department {department}")
    done = await webhook_secrets.rotate(
        d.engine, department, hook.secret, now=d.desk.clock.now(), overlap_s=overlap_s
    )
    return {
        "department": done.department,
        "secret": done.secret,
        "previous_valid_until": done.previous_valid_until,
        "rotated_at": done.rotated_at,
    }


@routes.get("/deliveries/stuck")
async def stuck_deliveries(
    _: Annotated[Principal, Depends(require("read", "deliveries"))],
    d: Deps,
) -> list[dict[str, Any]]:
    """Webhook deliveries still failing after the stuck threshold, per department."""
    return await webhooks.stuck(d.engine, min_attempts=d.stuck_after)


def router(engine: AsyncEngine, desk: Desk, *, stuck_after: int = 5) -> APIRouter:
    r = APIRouter(
        prefix="/v1", tags=["dispatch"], dependencies=[deps.bind(DispatchDeps(engine, desk, stuck_after))]
    )
    r.include_router(routes)
    return r
