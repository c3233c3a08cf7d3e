"""Audit HTTP API: traceability (a case's story, by trace, actor, time), proofs, heads, key, exports.

Hashes are lowercase hex and payloads standard base64, as in the export (contracts/audit/README.md);
the heads on Kafka (audit.heads.v1) carry base64 hashes per their JSON Schema. Errors are 4xx with a
``detail`` naming the problem.

Access (onegrid.auth): the raw trail (entries, traces, actors, heads, proofs, key, exports) is for
auditors and admins; a case's story is for the operators and grid workers whose scope holds the
case (enforced in the story's query) and for auditors. Payloads carry reporters' personal data: one
rule everywhere (stories, entries, one entry, the export), they are shown only to roles with
personal-data rights (`Principal.sees_personal_data`: operators and grid workers in their scope,
admins; not auditors, who verify with the hashes) and asked for explicitly (`payload=true`; 403
otherwise); every such read is logged (`onegrid.personal_data`). A page with payloads holds at most
`PAYLOAD_PAGE` entries, so one request cannot pull gigabytes into memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import StreamingResponse

from audit.domain.tree_head import key_id, raw_public_key
from audit.export import entries_lines, heads_lines
from audit.store import EntryFilter, LogDamaged, NotInLog, TrailStore, to_entry
from onegrid.auth import Principal, log_personal_data_read, personal_data_refusal, require
from onegrid.provided import Provided

Limit = Annotated[int, Query(ge=1, le=10_000)]
PAYLOAD_PAGE = 500
# Positions and sizes are PostgreSQL bigints: a larger number is a 422, not a failed query.
BIGINT = 2**63 - 1
After = Annotated[int, Query(ge=-1, le=BIGINT)]
Position = Annotated[int, Query(ge=0, le=BIGINT)]
StoryReader = Annotated[Principal, Depends(require("read", "audit.story"))]
TrailReader = Annotated[Principal, Depends(require("read", "audit.trail"))]


def payload_allowed(principal: Principal, payload: bool, limit: int = 1) -> bool:
    """Whether payloads are shown: asked for, by a role with the right (403 otherwise), on a page of
    at most PAYLOAD_PAGE entries (422 otherwise)."""
    if not payload:
        return False
    if not principal.sees_personal_data:
        raise HTTPException(403, personal_data_refusal(principal.role))
    if limit > PAYLOAD_PAGE:
        raise HTTPException(422, f"with payload=true a page holds at most {PAYLOAD_PAGE} entries")
    return True


def render(row: asyncpg.Record, *, payload: bool = True) -> dict[str, Any]:
    """An entry as the export has it, plus what is stored beside the leaf (not authenticated by it)."""
    out = to_entry(row).to_export()
    if not payload:
        out.pop("payload")
    out.update(
        source=row["source"],
        kafka_ts=None if row["kafka_ts"] is None else row["kafka_ts"].isoformat(),
        related_cases=row["related_cases"] or [],
        refs=row["refs"] or [],
        origin=row["origin"],
        headers=json.loads(row["headers"]),
        leaf_hash=bytes(row["leaf_hash"]).hex(),
    )
    return out


@dataclass(frozen=True)
class AuditDeps:
    """What the endpoints work with, bound by `router`."""

    store: TrailStore
    public_key: Ed25519PublicKey


deps: Provided[AuditDeps] = Provided("audit")
Deps = Annotated[AuditDeps, Depends(deps)]
trail_routes = APIRouter()
story_routes = APIRouter()


def not_found(exc: NotInLog) -> HTTPException:
    return HTTPException(404, str(exc))


@contextmanager
def proof_errors() -> Iterator[None]:
    """A proof's errors as answers: a position not in the log is 404, a damaged log 500 naming it."""
    try:
        yield
    except NotInLog as exc:
        raise not_found(exc) from exc
    except LogDamaged as exc:
        raise HTTPException(500, str(exc)) from exc


@trail_routes.get("/entries")
async def entries(
    d: Deps,
    principal: TrailReader,
    case_id: str | None = None,
    trace_id: str | None = None,
    actor: str | None = None,
    topic: str | None = None,
    event_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_seq: After = -1,
    limit: Limit = 100,
    payload: bool = False,
) -> dict[str, Any]:
    """Entries in log order, filtered; page with ``after_seq`` = the last ``seq`` seen."""
    for name, t in (("since", since), ("until", until)):
        if t is not None and t.utcoffset() is None:
            raise HTTPException(422, f"{name} needs a UTC offset, e.g. 2026-03-01T00:00:00Z")
    shown = payload_allowed(principal, payload, limit)
    flt = EntryFilter(case_id, trace_id, actor, topic, event_type, since, until, after_seq)
    rows = await d.store.entries(flt, limit)
    if shown:
        log_personal_data_read(principal, "audit entries", (row["seq"] for row in rows))
    return {"entries": [render(row, payload=shown) for row in rows]}


@trail_routes.get("/entries/{seq}")
async def entry(
    d: Deps, seq: Annotated[int, Path(ge=0, le=BIGINT)], principal: TrailReader, payload: bool = False
) -> dict[str, Any]:
    shown = payload_allowed(principal, payload)
    try:
        row = await d.store.entry(seq)
    except NotInLog as exc:
        raise not_found(exc) from exc
    if shown:
        log_personal_data_read(principal, "audit entry", [seq])
    return render(row, payload=shown)


@story_routes.get("/cases/{case_id}/story")
async def story(
    d: Deps,
    case_id: Annotated[str, Path(max_length=200)],
    principal: StoryReader,
    limit: Limit = 10_000,
    payload: bool = False,
) -> dict[str, Any]:
    """The case's whole story across services in log order: its source records (legacy packets),
    case events (merges included), orders, feedback, lifecycle, dead letters and quarantines.
    404 when the case is not in the caller's scope."""
    shown = payload_allowed(principal, payload)  # one case's story: bounded by the case
    scope = principal.scope()
    rows = await d.store.story(case_id, limit, None if scope.unrestricted else scope.like_patterns)
    if not rows:
        raise HTTPException(404, f"nothing in the trail about case {case_id} in your scope")
    if shown:
        log_personal_data_read(principal, f"audit story of case {case_id}", (row["seq"] for row in rows))
    return {"case_id": case_id, "entries": [render(row, payload=shown) for row in rows]}


@trail_routes.get("/traces/{trace_id}")
async def by_trace(d: Deps, trace_id: str, limit: Limit = 1000) -> dict[str, Any]:
    rows = await d.store.entries(EntryFilter(trace_id=trace_id), limit)
    return {"trace_id": trace_id, "entries": [render(row, payload=False) for row in rows]}


@trail_routes.get("/actors/{actor:path}")
async def by_actor(d: Deps, actor: str, after_seq: After = -1, limit: Limit = 1000) -> dict[str, Any]:
    rows = await d.store.entries(EntryFilter(actor=actor, after_seq=after_seq), limit)
    return {"actor": actor, "entries": [render(row, payload=False) for row in rows]}


@trail_routes.get("/heads")
async def heads(d: Deps, after_size: After = -1, limit: Limit = 1000) -> dict[str, Any]:
    return {"heads": [h.to_export() for h in await d.store.heads(after_size, limit)]}


@trail_routes.get("/heads/latest")
async def latest_head(
    d: Deps,
) -> dict[str, Any]:
    try:
        return (await d.store.latest_head()).to_export()
    except NotInLog as exc:
        raise not_found(exc) from exc


@trail_routes.get("/public-key")
async def public_key_info(
    d: Deps,
) -> dict[str, str]:
    """The key that signs tree heads; auditors should obtain it out of band too."""
    pem = d.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    raw = raw_public_key(d.public_key)
    import base64

    return {
        "key_id": key_id(d.public_key),
        "ed25519_base64": base64.b64encode(raw).decode(),
        "pem": pem.decode(),
    }


@trail_routes.get("/proofs/inclusion")
async def inclusion(
    d: Deps, seq: Position, tree_size: Annotated[int | None, Query(ge=0, le=BIGINT)] = None
) -> dict[str, Any]:
    """RFC 9162 PATH(seq, D[tree_size]); ``tree_size`` defaults to the latest signed head's."""
    with proof_errors():
        size = tree_size if tree_size is not None else (await d.store.latest_head()).tree_size
        leaf, proof, root = await d.store.inclusion_proof(seq, size)
    return {
        "seq": seq,
        "tree_size": size,
        "leaf_hash": leaf.hex(),
        "root_hash": root.hex(),
        "inclusion_proof": [p.hex() for p in proof],
    }


@trail_routes.get("/proofs/consistency")
async def consistency(d: Deps, first: Position, second: Position) -> dict[str, Any]:
    """RFC 9162 PROOF(first, D[second]) between two tree sizes (e.g. two signed heads)."""
    with proof_errors():
        proof, first_root, second_root = await d.store.consistency_proof(first, second)
    return {
        "first": first,
        "second": second,
        "first_root_hash": first_root.hex(),
        "second_root_hash": second_root.hex(),
        "consistency_proof": [p.hex() for p in proof],
    }


@trail_routes.get("/export/entries.jsonl")
async def export_entries(
    d: Deps,
    principal: TrailReader,
    from_seq: Position = 0,
    to_seq: Annotated[int | None, Query(ge=0, le=BIGINT)] = None,
    payload: bool = False,
) -> StreamingResponse:
    """``entries.jsonl`` for external auditors (the verifier needs it from seq 0); payloads are
    null (as if archived: the hashes verify) unless asked for by a role with the right."""
    shown = payload_allowed(principal, payload)
    if shown:
        log_personal_data_read(
            principal, "audit export", [f"{from_seq}..{to_seq if to_seq is not None else ''}"]
        )
    lines = entries_lines(d.store, from_seq, to_seq, payloads=shown)
    return StreamingResponse(lines, media_type="application/jsonl")


@trail_routes.get("/export/heads.jsonl")
async def export_heads(
    d: Deps,
) -> StreamingResponse:
    """``heads.jsonl``: every signed head, each with its consistency proof from the previous one."""
    return StreamingResponse(heads_lines(d.store), media_type="application/jsonl")


def router(store: TrailStore, public_key: Ed25519PublicKey) -> APIRouter:
    bound = deps.bind(AuditDeps(store, public_key))
    # The raw trail is for auditors and admins: every route but the story.
    trail = APIRouter(
        prefix="/v1", tags=["audit"], dependencies=[Depends(require("read", "audit.trail")), bound]
    )
    trail.include_router(trail_routes)
    stories = APIRouter(prefix="/v1", tags=["audit"], dependencies=[bound])
    stories.include_router(story_routes)
    # Combined, not nested: a router included into `trail` would inherit its auditor-only dependency.
    both = APIRouter()
    both.include_router(stories)
    both.include_router(trail)
    return both
