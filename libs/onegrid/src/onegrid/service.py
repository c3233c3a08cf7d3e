"""The runtime every service shares: an HTTP app (health, readiness, metrics, the service's own API)
and its consumer loops, started and stopped together.

SIGTERM (or Ctrl-C) makes uvicorn run the lifespan's shutdown: every loop finishes its batch,
commits and leaves its group before the process exits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse

from onegrid import heap, telemetry
from onegrid.auth import assert_guarded, install
from onegrid.kafka.loop import ConsumerLoop
from onegrid.kafka.policy import Backoff, is_transient
from onegrid.looplag import LoopLag
from onegrid.ratelimit import BodyLimit
from onegrid.settings import ServiceSettings

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]
Check = Callable[[], Awaitable[bool]]


@dataclass
class Runtime:
    """What `bootstrap()` hands to `create_app`: the wiring of one service."""

    settings: ServiceSettings
    loops: list[ConsumerLoop] = field(default_factory=list)
    on_start: list[Hook] = field(default_factory=list)  # before loops: migrations, topics, caches
    on_stop: list[Hook] = field(default_factory=list)  # after loops have stopped
    checks: dict[str, Check] = field(default_factory=dict)  # readiness checks by name
    background: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    failure: BaseException | None = None


def health_router(rt: Runtime) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Alive: the process answers. Restart it only when this fails."""
        if rt.failure is not None:
            # what failed is in the log; an exception's text can name hosts, users, SQL
            return JSONResponse({"status": "failed"}, status_code=500)  # type: ignore[return-value]
        return {"status": "ok", "service": rt.settings.service_name}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        """Ready: Kafka and the database reachable and every consumer loop running in its group.

        A member holding no partition is ready too: with more instances than a topic's partitions
        the extra ones stand by (`partitions:<group>` says how many each holds)."""
        results: dict[str, Any] = {}
        for name, check in rt.checks.items():
            try:
                results[name] = await asyncio.wait_for(check(), timeout=2.0)
            except Exception:
                results[name] = False
        for loop in rt.loops:
            results[f"consumer:{loop.config.group_id}"] = loop.running
            results[f"partitions:{loop.config.group_id}"] = len(loop.assigned)
        ok = all(v for k, v in results.items() if not k.startswith("partitions:")) and all(
            loop.ready for loop in rt.loops
        )
        return JSONResponse({"ready": ok, "checks": results}, status_code=200 if ok else 503)

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def create_app(
    rt: Runtime,
    *,
    title: str,
    routers: list[APIRouter] = (),  # type: ignore[assignment]
    untraced: tuple[str, ...] = (),
    body_limits: Mapping[str, int] | None = None,
) -> FastAPI:
    """The service's app; requests whose path starts with one of `untraced` get no server span
    (pages polled every few seconds, or a trace receiver that would trace its own exports).
    Every endpoint must declare `onegrid.auth.require(...)` or `public(...)` (checked here);
    bodies are capped at `settings.http_max_body_bytes`, or per path prefix by `body_limits`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for hook in rt.on_start:
            await hook()
        heap.settle()  # what start-up built (views, indexes, caught-up caches) is never traversed again
        for loop in rt.loops:
            rt.tasks.append(asyncio.create_task(_supervise(rt, loop.run(), loop.config.group_id)))
        for job in rt.background:
            rt.tasks.append(asyncio.create_task(supervise_job(rt, job, getattr(job, "__name__", "job"))))
        # Every service exports its event loop's lag (onegrid.looplag); a stall shows before it costs.
        rt.tasks.append(asyncio.create_task(_supervise(rt, LoopLag().run(), "event loop lag")))
        log.info("%s started", rt.settings.service_name)
        try:
            yield
        finally:
            for loop in rt.loops:
                loop.stop()
            loop_tasks = rt.tasks[: len(rt.loops)]
            if loop_tasks:
                await asyncio.wait(loop_tasks, timeout=30)
            for t in rt.tasks:
                t.cancel()
            await asyncio.gather(*rt.tasks, return_exceptions=True)
            for hook in rt.on_stop:
                await hook()
            log.info("%s stopped", rt.settings.service_name)

    app = FastAPI(title=title, lifespan=lifespan)
    app.include_router(health_router(rt))
    for r in routers:
        app.include_router(r)
    install(app, rt.settings.auth, environment=rt.settings.environment)
    assert_guarded(app)
    _refuse_unstorable_values(app)
    _instrument(app, untraced)
    app.add_middleware(
        BodyLimit,
        default_bytes=rt.settings.http_max_body_bytes,
        paths=dict(body_limits or {}),
    )
    _security_headers(app)
    return app


# Pages hold no inline script (the console's are files under /static), so scripts come from the
# service itself; nothing may frame a page (clickjacking); no URL leaks in a Referer.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# FastAPI's own documentation pages load Swagger UI and ReDoc from a CDN with an inline bootstrap.
_DOCS = ("/docs", "/redoc")


def _security_headers(app: FastAPI) -> None:
    @app.middleware("http")
    async def secured(request: Any, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            if name == "Content-Security-Policy" and request.url.path.startswith(_DOCS):
                continue
            response.headers.setdefault(name, value)
        return response


def _refuse_unstorable_values(app: FastAPI) -> None:
    """A value PostgreSQL cannot take (SQLSTATE class 22, data exception: a NUL in text, a number out
    of range, an impossible date) came from the request: 422 naming it, not a 500."""
    import asyncpg
    from sqlalchemy.exc import DBAPIError

    def sqlstate(exc: BaseException) -> str:
        for e in (exc, getattr(exc, "orig", None), getattr(getattr(exc, "orig", None), "__cause__", None)):
            code = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
            if isinstance(code, str):
                return code
        return ""

    async def refused(_request: Any, exc: Exception) -> Response:
        if sqlstate(exc).startswith("22"):
            message = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
            return JSONResponse(
                {"detail": f"a value in the request cannot be stored or compared: {message}"}, 422
            )
        log.error("database error", exc_info=exc)
        return JSONResponse({"detail": "internal error"}, 500)

    app.add_exception_handler(asyncpg.exceptions.DataError, refused)
    app.add_exception_handler(DBAPIError, refused)


async def _supervise(rt: Runtime, coro: Awaitable[Any], name: str) -> None:
    try:
        await coro
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        # A loop that dies (DLQ limit, fencing, bug) must be loud: liveness fails so it gets restarted.
        rt.failure = exc
        log.exception("%s stopped with an error", name)


async def supervise_job(
    rt: Runtime,
    job: Callable[[], Awaitable[Any]],
    name: str,
    *,
    initial_backoff_s: float = 0.5,
    max_backoff_s: float = 30.0,
) -> None:
    """Run a background job (outbox relay, deadlines, webhooks, signers) for the life of the service.

    A transient failure (the database restarting, a broker away) restarts the job after a capped,
    jittered backoff: the outage ends and the job goes on, with nothing to restart by hand. Any
    other failure stops it as `_supervise` does (liveness fails, the process is restarted)."""
    backoff = Backoff(initial_s=initial_backoff_s, max_s=max_backoff_s)
    while True:
        started = asyncio.get_running_loop().time()
        try:
            await job()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not is_transient(exc):
                rt.failure = exc
                log.exception("%s stopped with an error", name)
                return
            if asyncio.get_running_loop().time() - started > max_backoff_s:
                backoff.reset()  # it ran a good while: a new outage starts the backoff afresh
            delay = backoff.next_delay()
            log.warning("%s failed transiently (%s); restarting in %.1f s", name, type(exc).__name__, delay)
            await asyncio.sleep(delay)
        except BaseException as exc:
            rt.failure = exc
            log.exception("%s stopped with an error", name)
            return


def _instrument(app: FastAPI, untraced: tuple[str, ...] = ()) -> None:
    """A server span per request, continuing the caller's `traceparent`."""
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind

    tracer = telemetry.tracer("onegrid.http")

    @app.middleware("http")
    async def trace_requests(request: Any, call_next: Any) -> Any:
        path = request.url.path
        if path in ("/healthz", "/readyz", "/metrics") or (untraced and path.startswith(untraced)):
            return await call_next(request)
        ctx = propagate.extract(dict(request.headers))
        with tracer.start_as_current_span(
            f"{request.method} {path}",
            context=ctx,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method, "url.path": path},
        ) as span:
            response = await call_next(request)
            span.set_attribute("http.response.status_code", response.status_code)
            return response


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    import uvicorn

    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
    )
