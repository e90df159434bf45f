"""The reference service: True Label's hot paths over HTTP, on either database.

``create_app(config)`` builds a FastAPI application (OpenAPI at ``/docs`` and
``/openapi.json``). The hot-path handlers are coroutines: on PostgreSQL they await an async
pool, so a request waiting for the database holds no thread; on SQLite the blocking paths run
in worker threads. Each handler takes the current backend once, so a primary switch
mid-request is invisible to it. Scans are group-committed (``group_commit``): a request is
answered once its scan is committed, together with its neighbours'. ``POST /scans`` itself is
answered on raw ASGI ahead of FastAPI (``scan_endpoint``): it is the hottest request.

What an anonymous client can make the service do is bounded: ids in paths are canonical UUIDs
or 404 (``ids.canonical_uuid``), bodies are refused on their declared length and read no
further than their limit, and a database error never reaches a client with its text: 503 with
``Retry-After`` when the database is unavailable, else a bare 500 (the detail is logged here,
its first line, with any password masked).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Annotated, Any

import orjson
import psycopg
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response
from psycopg_pool import PoolTimeout

from truelabel_db.cache.stats import hit_ratios
from truelabel_db.errors import TargetError
from truelabel_db.hotpaths.routed import RoutedHotPaths
from truelabel_db.ids import canonical_uuid
from truelabel_db.postgres import redact
from truelabel_db.service.auth import LAB, SERVICE, Authenticator, Guards, Principal, brand_in_path
from truelabel_db.service.backend import Backend, GateHeld, data_error
from truelabel_db.service.config import ServiceConfig
from truelabel_db.service.group_commit import GroupCommitConfig, GroupCommitter, Overloaded
from truelabel_db.service.ingest import BatchRefused, Limits, ScanRow, ingest, parse_batch
from truelabel_db.service.jobs import Jobs
from truelabel_db.service.limits import MAX_ID, MAX_SCAN_BODY, RateLimiter, retry_after
from truelabel_db.service.metrics import CONTENT_TYPE_LATEST, exposition, registry
from truelabel_db.service.scan_endpoint import CLOSE, Answer, ScanRefused, ServiceApp, answer_scan, declared_length
from truelabel_db.service.shared_limits import SharedCounters

log = logging.getLogger("truelabel_db.service")
UNAVAILABLE = (GateHeld, Overloaded, PoolTimeout, psycopg.OperationalError, TargetError)
MAX_BATCH_BYTES = 4 << 20
HEALTH_MEMORY = 1.0     # seconds an anonymous /health answer is reused (a probe per second at most)
NO_NUL = r"^[^\x00]+$"  # PostgreSQL text cannot hold a NUL: a 422 here, not a 500 from the database
Identifier = Annotated[str, Path(max_length=MAX_ID, description=f"at most {MAX_ID} characters")]


def product_in_path(product_id: Identifier) -> str:
    """The product id of the path, canonical (lower case, hyphenated); 404 if it is not a UUID."""
    canonical = canonical_uuid(product_id)
    if canonical is None:
        raise HTTPException(404, "no such product")
    return canonical


def logged_detail(exc: BaseException) -> str:
    """An exception for the server's log: its type and first line, any password masked."""
    return f"{type(exc).__name__}: {redact((str(exc).strip().splitlines() or [''])[0])}"


class RememberedCheck:
    """A health check whose outcome is reused for ``seconds``: anonymous probes, however many,
    cost at most one query per worker per ``seconds``. ``check`` returns None when healthy, else
    a reason for the 503."""

    def __init__(self, check: Callable[[], str | None], seconds: float = HEALTH_MEMORY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.check, self.seconds, self.clock = check, seconds, clock
        self._at: float | None = None
        self._outcome: str | None = None

    def __call__(self) -> str | None:
        now = self.clock()
        if self._at is None or now - self._at >= self.seconds:
            self._outcome, self._at = self.check(), now
        return self._outcome


async def bounded_body(request: Request, limit: int) -> bytes:
    """The request's body; 413 (and the connection closed) as soon as it passes ``limit``: on
    its declared length before anything is read, else once that many bytes have come."""
    if declared_length(request.headers.get("content-length")) > limit:
        raise HTTPException(413, f"the body is at most {limit:,} bytes", headers=CLOSE)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the body is at most {limit:,} bytes", headers=CLOSE)
        chunks.append(chunk)
    return b"".join(chunks)


def _json(data: Any, status: int = 200) -> Response:
    """orjson straight to bytes: the 1000-product list is large, and the encoder is the cost."""
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _unavailable(exc: BaseException) -> HTTPException:
    """A write that could not be made now: 503 and when to retry; never acknowledged."""
    reason = str(exc) if isinstance(exc, (GateHeld, Overloaded)) else f"database unavailable: {type(exc).__name__}"
    return HTTPException(503, reason, headers={"Retry-After": "1"})


def create_app(config: ServiceConfig) -> ServiceApp:
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        backend = await Backend.start(config)
        committer = GroupCommitter(lambda scans: backend.write(lambda current: current.aio.scan_many(scans)),
                                   GroupCommitConfig(window=config.group_commit_window,
                                                     max_batch=config.group_commit_max),
                                   data_error=data_error).start()
        state.update(backend=backend, committer=committer, jobs=Jobs(backend).start(), auth=Authenticator(config))
        shared = SharedCounters(config.redis_url) if config.redis_url else None
        limiter.shared = guards.failures.shared = shared   # one quota for every worker
        yield
        limiter.shared = guards.failures.shared = None
        if shared is not None:
            await shared.close()
        await committer.close()
        state["jobs"].stop()
        await backend.close()
        state["auth"].close()

    app = FastAPI(title="True Label reference service", version="1", lifespan=lifespan,
                  description="True Label's hot paths on the legacy SQLite or the optimized PostgreSQL, "
                              "cached in layers, honouring the cutover gate.")

    def backend() -> Backend:
        current: Backend = state["backend"]
        return current

    guards = Guards(lambda: state["auth"], config.auth_failures_per_minute)
    limiter = RateLimiter(config.scan_rate, config.scan_burst)

    @app.exception_handler(Overloaded)
    async def overloaded(_: Request, exc: Overloaded) -> Response:
        """Shed load at once (503, retry shortly) rather than queue what a client will give up on."""
        return Response(orjson.dumps({"detail": str(exc)}), status_code=503, media_type="application/json",
                        headers={"Retry-After": "1"})

    async def database_unavailable(request: Request, exc: Exception) -> Response:
        """A read the database could not serve now: 503, retry shortly; no detail to the client."""
        log.warning("%s %s: database unavailable: %s", request.method, request.url.path, logged_detail(exc))
        return Response(orjson.dumps({"detail": _unavailable(exc).detail}), status_code=503,
                        media_type="application/json", headers={"Retry-After": "1"})

    async def database_error(request: Request, exc: Exception) -> Response:
        """Any other database error: a bare 500; what the database said stays in the log."""
        log.error("%s %s: database error: %s", request.method, request.url.path, logged_detail(exc))
        return Response(orjson.dumps({"detail": "internal error"}), status_code=500, media_type="application/json")

    for unavailable in (GateHeld, PoolTimeout, psycopg.OperationalError, TargetError):
        app.add_exception_handler(unavailable, database_unavailable)
    for error in (psycopg.Error, sqlite3.Error):
        app.add_exception_handler(error, database_error)

    def database_check() -> str | None:
        try:
            backend().current.paths.brands(1)
        except Exception as exc:
            log.warning("/health: database unavailable: %s", logged_detail(exc))
            return f"database unavailable: {type(exc).__name__}"
        return None

    anonymous_check = RememberedCheck(database_check)

    @app.get("/health", summary="Whether the service answers; the details for a service or admin key")
    def health(principal: Principal | None = Depends(guards.optional)) -> dict[str, Any]:
        privileged = principal is not None and principal.allows(SERVICE)
        failed = database_check() if privileged else anonymous_check()
        if failed:
            raise HTTPException(503, failed, headers={"Retry-After": "1"})
        if not privileged:
            return {"status": "ok"}   # a load balancer's probe learns nothing more
        current = backend().current
        stats = current.cache.stats.snapshot() if current.cache else {}
        return {"status": "ok", "database": current.paths.kind, "primary_epoch": current.epoch,
                "switches": backend().switches, "gate_waits": backend().gate_waits,
                "durable_commits": current.synchronous_commit != "off",
                "synchronous_commit": current.synchronous_commit,
                "group_commit": state["committer"].stats.to_dict(),
                "cache": {"enabled": current.cache is not None, "hit_ratio": hit_ratios(stats)},
                "jobs": {"runs": state["jobs"].runs, "failures": state["jobs"].failures,
                         "warmed_at": state["jobs"].warmed_at()},
                "reads": dict(current.paths.reads) if isinstance(current.paths, RoutedHotPaths) else None,
                "replicas": ([r.to_dict() for r in current.paths.router.states()]
                             if isinstance(current.paths, RoutedHotPaths) else None),
                "rate_limited": limiter.refused, "pid": os.getpid()}

    @app.get("/products", summary="The newest products with their validations and brand")
    async def products(limit: int = Query(1000, ge=1, le=5000)) -> Any:
        return _json(await backend().current.aio.product_list(limit))

    @app.get("/products/{product_id}", summary="One product with its validations and brand")
    async def product(product_id: Annotated[str, Depends(product_in_path)]) -> Any:
        found = await backend().current.aio.product(product_id)
        if found is None:
            raise HTTPException(404, "no such product")
        return _json(found)

    def scan_refusal(exc: BaseException) -> ScanRefused | None:
        """A scan not recorded: 503 when it may work later, 422 when the database refused its data."""
        if isinstance(exc, UNAVAILABLE):
            return ScanRefused(503, _unavailable(exc).detail, {"Retry-After": "1"})
        if data_error(exc):   # what the database said may quote the row: the log has it, not the client
            log.warning("POST /scans refused by the database: %s", logged_detail(exc))
            return ScanRefused(422, "refused by the database: the scan's data is not valid")
        return None

    async def admit(host: str | None) -> Answer | None:
        """The per-client rate limit, before the body is read: a 429 to answer, or None."""
        wait = await limiter.admit(host)
        if wait:
            return 429, orjson.dumps({"detail": "too many scans from this address; retry later"}), {
                "Retry-After": retry_after(wait)}
        return None

    async def answer(body: bytes, agent: str | None, host: str | None) -> Answer:
        return await answer_scan(state["committer"].submit, body, agent, host, scan_refusal)

    @app.post("/scans", summary="A consumer scanned a QR code: record the scan, answer with the product",
              description="Answered once the scan is committed (group commit). Body: "
                          '{"qr_code": "TL-...", "user_agent": optional}.',
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                  "type": "object", "required": ["qr_code"],
                  "properties": {"qr_code": {"type": "string", "minLength": 1, "maxLength": 200},
                                 "user_agent": {"type": "string", "maxLength": 500}}}}}}})
    async def scan(request: Request) -> Any:
        host = request.client.host if request.client else None
        if declared_length(request.headers.get("content-length")) > MAX_SCAN_BODY:
            raise HTTPException(413, f"a scan's body is at most {MAX_SCAN_BODY} bytes", headers=CLOSE)
        refused = await admit(host)
        status, payload, headers = refused or await answer(await bounded_body(request, MAX_SCAN_BODY),
                                                           request.headers.get("user-agent"), host)
        return Response(payload, status_code=status, headers=headers, media_type="application/json")

    @app.post("/scans/batch", summary="Many scans at once (edge collectors, offline apps); each row judged alone",
              description="Needs a service key: a row may set its own address, time and id.",
              dependencies=[Depends(guards.scoped(SERVICE))],
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                  "type": "object", "required": ["scans"],
                  "properties": {"scans": {"type": "array", "maxItems": config.batch_max_rows,
                                           "items": ScanRow.model_json_schema()}}}}}}})
    async def scan_batch(request: Request) -> Any:
        body = await bounded_body(request, MAX_BATCH_BYTES)
        try:
            batch = parse_batch(body, datetime.now(timezone.utc), Limits(max_rows=config.batch_max_rows))
        except BatchRefused as exc:
            raise HTTPException(exc.status, str(exc)) from exc
        try:
            report = await ingest(batch, lambda scans: backend().write(lambda c: c.aio.record_scans(scans)),
                                  data_error)
        except UNAVAILABLE as exc:
            raise _unavailable(exc) from exc
        return _json(report.to_dict(), 200 if report.accepted or not report.rejected else 422)

    brand_reader = [Depends(guards.brand_reader())]

    @app.get("/brands/{brand_id}/analytics", summary="Scans per day and top products of a brand",
             description="Needs that brand's key (brand:<id>), or a service or admin key.", dependencies=brand_reader)
    async def analytics(brand_id: Annotated[str, Depends(brand_in_path)],
                        days: int = Query(30, ge=1, le=366)) -> Any:
        return _json(await backend().current.aio.qr_analytics(brand_id, days))

    @app.get("/brands/{brand_id}/dashboard", summary="A brand's dashboard figures",
             description="Needs that brand's key (brand:<id>), or a service or admin key.", dependencies=brand_reader)
    async def dashboard(brand_id: Annotated[str, Depends(brand_in_path)]) -> Any:
        found = await backend().current.aio.brand_dashboard(brand_id)
        if found is None:
            raise HTTPException(404, "no such brand")
        return _json(found)

    @app.get("/validations/queue", summary="Open validation requests, most urgent first",
             description="Needs a lab, service or admin key.", dependencies=[Depends(guards.scoped(LAB, SERVICE))])
    async def queue(limit: int = Query(100, ge=1, le=1000)) -> Any:
        return _json(await backend().current.aio.validation_queue(limit))

    @app.get("/search", summary="Product search in Portuguese, forgiving typos on PostgreSQL")
    async def search(q: str = Query(..., min_length=1, max_length=200, pattern=NO_NUL,
                                    description="1 to 200 characters, no NUL (PostgreSQL text cannot hold one)"),
                     limit: int = Query(20, ge=1, le=200)) -> Any:
        return _json(await backend().current.aio.search(q, limit))

    own_metrics = registry(backend, lambda: state["committer"].stats)

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics (a service or admin key)",
             dependencies=[Depends(guards.scoped(SERVICE))])
    def metrics() -> Response:
        return Response(exposition(own_metrics), media_type=CONTENT_TYPE_LATEST)

    return ServiceApp(app, admit, answer)


def app_from_env() -> ServiceApp:
    """The factory uvicorn's workers call: the configuration comes from the environment."""
    return create_app(ServiceConfig.from_env())
