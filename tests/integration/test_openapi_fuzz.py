"""Schemathesis against every service's OpenAPI: each service runs for real (its bootstrap, the
session's Kafka and PostgreSQL, served by uvicorn on a free port), and schemathesis generates
requests for every operation of its /openapi.json, authenticated as admin, from a worker thread
(its HTTP client is synchronous; the service keeps serving on the event loop). No response may be
a 5xx. Bounded: ONEGRID_SCHEMATHESIS_EXAMPLES per operation (default 25).

Needs the `schemathesis` package (a dev dependency); without it the test is skipped, saying so."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import uvicorn
from support.auth import ADMIN

from devstack.paths import free_port
from onegrid.settings import KafkaSettings

schemathesis = pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed: add it to the dev dependencies to fuzz the APIs"
)
pytestmark = pytest.mark.asyncio(loop_scope="session")
# Their 503 (not ready) and 500 (a failed loop) are their contract, not a crash.
HEALTH = {"/healthz", "/readyz"}
EXAMPLES = int(os.environ.get("ONEGRID_SCHEMATHESIS_EXAMPLES", "25"))


def _audit(common: dict[str, Any]) -> Any:
    from audit.bootstrap import bootstrap
    from audit.settings import Settings

    return bootstrap(Settings(**common)).app


def _registry(common: dict[str, Any]) -> Any:
    from grid_registry.bootstrap import bootstrap
    from grid_registry.settings import Settings

    return bootstrap(Settings(**common, seed_on_start=False)).app


def _intake(common: dict[str, Any]) -> Any:
    from intake.bootstrap import bootstrap
    from intake.settings import Settings

    return bootstrap(Settings(**common)).app


def _open311(common: dict[str, Any]) -> Any:
    from open311.bootstrap import bootstrap
    from open311.settings import Settings

    return bootstrap(Settings(**common)).app


def _dispatch(common: dict[str, Any]) -> Any:
    from dispatch.bootstrap import bootstrap
    from dispatch.settings import Settings

    return bootstrap(Settings(**common)).app


def _evaluation(common: dict[str, Any]) -> Any:
    from evaluation.bootstrap import bootstrap
    from evaluation.settings import Settings

    return bootstrap(Settings(**common)).app


def _console(common: dict[str, Any]) -> Any:
    from console.bootstrap import bootstrap
    from console.settings import Settings

    return bootstrap(Settings(**common)).app


def _bridges(common: dict[str, Any]) -> Any:
    from bridges.bootstrap import bootstrap
    from bridges.settings import Settings

    # Topics of its own: a generated push that happens to be a record must not reach the catalogue's.
    name = common["service_name"]
    topics = {f"{feed}_topic": f"t.{name}.{feed}" for feed in ("hj212", "cap", "safety", "party")}
    return bootstrap(Settings(**common, **topics, hj212_port=0)).app


SERVICES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "grid-registry": _registry,
    "intake": _intake,
    "dispatch": _dispatch,
    "audit": _audit,
    "evaluation": _evaluation,
    "open311": _open311,
    "console": _console,
    "bridges": _bridges,
}


def fuzz(base: str) -> list[str]:
    """Every operation, EXAMPLES generated requests each; the 5xx answers, described."""
    from hypothesis import HealthCheck, given, settings

    loader = getattr(getattr(schemathesis, "openapi", None), "from_url", None) or schemathesis.from_uri
    schema = loader(f"{base}/openapi.json")
    failures: list[str] = []

    def runner(operation: Any) -> Callable[[], None]:
        @settings(
            max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call(base_url=base, headers=dict(ADMIN), timeout=30)
            # A crash is a 5xx; a declared, temporary 503 (documented in the operation, with
            # Retry-After: e.g. intake's ledger before its first judgement) is the contract.
            declared_wait = (
                response.status_code == 503
                and "503" in operation.definition.raw.get("responses", {})
                and "retry-after" in {k.lower() for k in response.headers}
            )
            if response.status_code >= 500 and not declared_wait:
                failures.append(
                    f"{operation.method.upper()} {operation.path}: {response.status_code} "
                    f"for {case.path_parameters} {case.query} -> {response.text[:300]}"
                )

        return run  # type: ignore[no-any-return]

    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path not in HEALTH:
            runner(operation)()
    return failures


@pytest.mark.parametrize("service", list(SERVICES))
async def test_no_operation_answers_5xx(
    service: str, kafka_settings: KafkaSettings, database_url: str
) -> None:
    uid = uuid.uuid4().hex[:8]
    common = {
        "DATABASE_URL": database_url,
        "db_schema": f"fuzz_{service.replace('-', '_')}_{uid}",
        "kafka": kafka_settings,
        "service_name": f"fuzz-{service}-{uid}",
        "environment": "test",
    }
    if service == "audit":
        import base64

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        raw = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        common["signing_key"] = base64.b64encode(raw).decode()
    app = SERVICES[service](common)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(600):
            if server.started or task.done():
                break
            await asyncio.sleep(0.1)
        assert server.started, f"{service} did not start"
        failures = await asyncio.to_thread(fuzz, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)
    assert failures == [], "\n".join(failures[:20])
