"""The reference service: True Label's hot paths over HTTP, on either database.

``create_app(config)`` builds a FastAPI application (OpenAPI at ``/docs`` and
``/openapi.json``). Handlers are plain functions run in the server's thread pool; each one
takes the current backend once, so a primary switch mid-request is invisible to it.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import psycopg
from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response

from truelabel_db.cache.stats import hit_ratios
from truelabel_db.hotpaths.base import Scan
from truelabel_db.hotpaths.routed import RoutedHotPaths
from truelabel_db.service.backend import Backend, GateHeld
from truelabel_db.service.config import ServiceConfig
from truelabel_db.service.jobs import Jobs
from truelabel_db.service.metrics import CONTENT_TYPE_LATEST, exposition, registry


def _json(data: Any) -> Response:
    """orjson straight to bytes: the 1000-product list is large, and the encoder is the cost."""
    return Response(orjson.dumps(data), media_type="application/json")


def _client_ip(request: Request) -> str | None:
    host = request.client.host if request.client else None
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None  # a test client or a proxy's name: no address is better than a wrong one


def create_app(config: ServiceConfig) -> FastAPI:
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        backend = Backend(config).follow()
        state["backend"], state["jobs"] = backend, Jobs(backend).start()
        yield
        state["jobs"].stop()
        backend.close()

    app = FastAPI(title="True Label reference service", version="1", lifespan=lifespan,
                  description="True Label's hot paths on the legacy SQLite or the optimized PostgreSQL, "
                              "cached in layers, honouring the cutover gate.")

    def backend() -> Backend:
        return state["backend"]

    @app.get("/health", summary="Which database is serving, and whether it answers")
    def health() -> dict[str, Any]:
        current = backend().current
        try:
            current.paths.brands(1)
        except (psycopg.Error, OSError, Exception) as exc:
            raise HTTPException(503, f"database unavailable: {type(exc).__name__}") from exc
        stats = current.cache.stats.snapshot() if current.cache else {}
        return {"status": "ok", "database": current.paths.kind, "primary_epoch": current.epoch,
                "switches": backend().switches, "gate_waits": backend().gate_waits,
                "cache": {"enabled": current.cache is not None, "hit_ratio": hit_ratios(stats)},
                "jobs": {"runs": state["jobs"].runs, "failures": state["jobs"].failures,
                         "warmed_at": state["jobs"].warmed_at()},
                "reads": dict(current.paths.reads) if isinstance(current.paths, RoutedHotPaths) else None,
                "replicas": ([r.to_dict() for r in current.paths.router.states()]
                             if isinstance(current.paths, RoutedHotPaths) else None),
                "pid": os.getpid()}

    @app.get("/products", summary="The newest products with their validations and brand")
    def products(limit: int = Query(1000, ge=1, le=5000)) -> Any:
        return _json(backend().current.served.product_list(limit))

    @app.get("/products/{product_id}", summary="One product with its validations and brand")
    def product(product_id: str) -> Any:
        found = backend().current.served.product(product_id)
        if found is None:
            raise HTTPException(404, "no such product")
        return _json(found)

    @app.post("/scans", summary="A consumer scanned a QR code: find the product, record the scan")
    def scan(request: Request, qr_code: str = Body(..., embed=True, max_length=200),
             user_agent: str | None = Body(None, embed=True, max_length=500)) -> Any:
        recorded = Scan(qr_code, _client_ip(request), user_agent or request.headers.get("user-agent"))
        try:
            found = backend().write(lambda current: current.served.scan(recorded))
        except GateHeld as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "1"}) from exc
        return _json({"recorded": True, "product": found})

    @app.get("/brands/{brand_id}/analytics", summary="Scans per day and top products of a brand")
    def analytics(brand_id: str, days: int = Query(30, ge=1, le=366)) -> Any:
        return _json(backend().current.served.qr_analytics(brand_id, days))

    @app.get("/brands/{brand_id}/dashboard", summary="A brand's dashboard figures")
    def dashboard(brand_id: str) -> Any:
        found = backend().current.served.brand_dashboard(brand_id)
        if found is None:
            raise HTTPException(404, "no such brand")
        return _json(found)

    @app.get("/validations/queue", summary="Open validation requests, most urgent first")
    def queue(limit: int = Query(100, ge=1, le=1000)) -> Any:
        return _json(backend().current.served.validation_queue(limit))

    @app.get("/search", summary="Product search in Portuguese, forgiving typos on PostgreSQL")
    def search(q: str = Query(..., min_length=1, max_length=200), limit: int = Query(20, ge=1, le=200)) -> Any:
        return _json(backend().current.served.search(q, limit))

    own_metrics = registry(backend)

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    def metrics() -> Response:
        return Response(exposition(own_metrics), media_type=CONTENT_TYPE_LATEST)

    return app


def app_from_env() -> FastAPI:
    """The factory uvicorn's workers call: the configuration comes from the environment."""
    return create_app(ServiceConfig.from_env())
