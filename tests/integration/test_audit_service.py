"""The audit service end to end on the real broker and database: the tap records what flows, the API
tells a case's story and serves proofs that an independent RFC 9162 verifier (written here, from the
RFC's text) accepts, and the heads published on audit.heads.v1 validate against their JSON Schema."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import uuid
from pathlib import Path

import httpx
import jsonschema
import pytest
import uvicorn
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.audit_trail import asyncpg_url, case_event
from support.auth import ADMIN
from support.waiting import wait_until

from audit.bootstrap import bootstrap
from audit.settings import Settings
from devstack.paths import free_port
from onegrid.topics import AUDIT_HEADS

from .conftest import read_all

pytestmark = pytest.mark.asyncio(loop_scope="session")
SCHEMA = json.loads((Path(__file__).parents[2] / "contracts/schemas/signed-tree-head.v1.json").read_text())
SEED = hashlib.sha256(b"audit service test key").digest()


# -- RFC 9162 section 2.1, independently of audit.domain.merkle --------------------------------------
def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def rfc_verify_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2, step by step."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = _h(b"\x01" + p + r)
            if fn % 2 == 0:
                while not (fn % 2 == 1 or fn == 0):
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = _h(b"\x01" + r + p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def rfc_verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, path: list[bytes]
) -> bool:
    """RFC 9162 2.1.4.2, step by step (0 < first < second)."""
    if not path:
        return False
    if first & (first - 1) == 0:  # an exact power of 2
        path = [first_hash, *path]
    fn, sn = first - 1, second - 1
    while fn % 2 == 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr, sr = _h(b"\x01" + c + fr), _h(b"\x01" + c + sr)
            if fn % 2 == 0:
                while not (fn % 2 == 1 or fn == 0):
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = _h(b"\x01" + sr + c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_hash and sr == second_hash and sn == 0


async def test_tap_story_proofs_and_published_heads(kafka_settings, topics, database_url: str) -> None:
    legacy, cases, lifecycle = (
        await topics("legacy.audit"),
        await topics("audit.cases", partitions=2),
        await topics("audit.lifecycle"),
    )
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    port = free_port()
    settings = Settings(
        environment="test",
        signing_key=base64.b64encode(SEED).decode(),
        database_url=asyncpg_url(database_url),
        db_schema=f"audit_svc_{uuid.uuid4().hex[:8]}",
        kafka=kafka_settings,
        http_port=port,
        instance_id=uuid.uuid4().hex[:6],
        tap_topic_pattern="^(" + "|".join(t.replace(".", r"\.") for t in (legacy, cases, lifecycle)) + ")$",
        # the test's own topics in the catalogue's roles: cases and lifecycle name cases, legacy is opaque
        case_topic_pattern="^(" + "|".join(t.replace(".", r"\.") for t in (cases, lifecycle)) + ")$",
        opaque_topic_pattern="^" + legacy.replace(".", r"\.") + "$",
        head_interval_s=0.5,
        batch_max_records=50,
    )
    app = bootstrap(settings).app
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    serving = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10, headers=ADMIN) as http:

            async def ready() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(ready, timeout_s=90, interval_s=0.3, what="the tap ready")
            case_id = f"case-{uuid.uuid4().hex[:8]}"
            producer = AIOKafkaProducer(**kafka_settings.client_kwargs())
            await producer.start()
            try:
                packet = await producer.send_and_wait(legacy, b"##0101QN=20260301083000000;CP=&&&&1C80")
                reported = case_event(
                    cases,
                    0,
                    case_id,
                    source={"topic": legacy, "partition": packet.partition, "offset": packet.offset},
                )
                await producer.send_and_wait(
                    cases, reported.value, key=reported.key, headers=reported.headers
                )
                merged = case_event(cases, 0, f"{case_id}-dup", merge={"matched_case_id": case_id})
                await producer.send_and_wait(cases, merged.value, key=merged.key, headers=merged.headers)
                closed = {"case_id": case_id, "to_state": "closed", "actor": {"kind": "staff", "id": "hj/7"}}
                await producer.send_and_wait(lifecycle, json.dumps(closed).encode(), key=case_id.encode())
                for i in range(40):
                    await producer.send(legacy, f"noise-{i}".encode())
                await producer.flush()
            finally:
                await producer.stop()

            async def story():  # type: ignore[no-untyped-def]
                r = await http.get(f"/v1/cases/{case_id}/story")
                return r.json()["entries"] if r.status_code == 200 and len(r.json()["entries"]) == 4 else None

            entries = await wait_until(story, interval_s=0.3, what="the story in the trail")
            assert [e["topic"] for e in entries] == [legacy, cases, cases, lifecycle]
            assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
            assert entries[3]["actor"] == "staff:hj/7"
            by_actor = (await http.get("/v1/actors/staff:hj/7")).json()["entries"]
            assert [e["seq"] for e in by_actor] == [entries[3]["seq"]]
            trace = entries[1]["trace_id"]
            assert [e["seq"] for e in (await http.get(f"/v1/traces/{trace}")).json()["entries"]] == [
                entries[1]["seq"]
            ]

            async def head_covering():  # type: ignore[no-untyped-def]
                r = await http.get("/v1/heads/latest")
                return r.json() if r.status_code == 200 and r.json()["tree_size"] >= 44 else None

            head = await wait_until(head_covering, interval_s=0.3, what="a published head covering the story")
            root = bytes.fromhex(head["root_hash"])
            for e in entries:
                proof = (await http.get("/v1/proofs/inclusion", params={"seq": e["seq"]})).json()
                assert proof["tree_size"] == head["tree_size"]
                assert proof["leaf_hash"] == e["leaf_hash"]
                path = [bytes.fromhex(p) for p in proof["inclusion_proof"]]
                assert rfc_verify_inclusion(
                    e["seq"], head["tree_size"], bytes.fromhex(e["leaf_hash"]), path, root
                )
                assert not rfc_verify_inclusion(
                    e["seq"] ^ 1, head["tree_size"], bytes.fromhex(e["leaf_hash"]), path, root
                )
            heads = (await http.get("/v1/heads")).json()["heads"]
            for a, b in itertools.pairwise(heads):
                if a["tree_size"] in (0, b["tree_size"]):
                    continue
                c = (
                    await http.get(
                        "/v1/proofs/consistency", params={"first": a["tree_size"], "second": b["tree_size"]}
                    )
                ).json()
                path = [bytes.fromhex(p) for p in c["consistency_proof"]]
                assert rfc_verify_consistency(
                    a["tree_size"],
                    b["tree_size"],
                    bytes.fromhex(a["root_hash"]),
                    bytes.fromhex(b["root_hash"]),
                    path,
                )
            assert (await http.get("/v1/proofs/inclusion", params={"seq": 10**9})).status_code == 404
            assert (await http.get("/v1/entries", params={"since": "2026-01-01T00:00:00"})).status_code == 422
            pk = (await http.get("/v1/public-key")).json()
            assert base64.b64decode(pk["ed25519_base64"]) == key.public_key().public_bytes_raw()

        published = [
            json.loads(r.value)
            for r in await read_all(kafka_settings, AUDIT_HEADS, timeout_s=10)
            if r.key == pk["key_id"].encode()
        ]
        assert published, "no head published on audit.heads.v1"
        for message in published:
            jsonschema.validate(message, SCHEMA)
        assert head["root_hash"] in {base64.b64decode(m["root_hash"]).hex() for m in published}
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 60)
