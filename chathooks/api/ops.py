"""Probes and metrics for the operator: ``/healthz``, ``/readyz``, ``/metrics``.

Served by ``serve`` and ``api`` next to the API, and by ``chathooks worker`` alone on
``CHATHOOKS_METRICS_PORT``. No token: they show no workspace's data (put them behind
the load balancer's or the network's access rules).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from chathooks import health, metrics
from chathooks.api.deps import RuntimeDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Check that the process runs")
def healthz() -> dict[str, str]:
    """200 while the process runs."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Check that the process is ready",
    responses={503: {"description": "Not ready; ``checks`` says why."}},
)
async def readyz(request: Request, rt: RuntimeDep) -> JSONResponse:
    """200 when the database answers with the current schema (and, in a process that
    delivers, the delivery loop has run in the last 30 s); else 503."""
    heartbeat: health.Heartbeat | None = getattr(request.app.state, "heartbeat", None)
    result = await health.readiness(rt, heartbeat)
    return JSONResponse(
        {"status": "ready" if result.ready else "not ready", "checks": result.checks},
        status_code=200 if result.ready else 503,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The metrics, in Prometheus' text exposition format.",
            "content": {CONTENT_TYPE_PLAIN_0_0_4: {"schema": {"type": "string"}}},
        }
    },
)
async def prometheus_metrics(rt: RuntimeDep) -> Response:
    """Prometheus' text format: this process' counters and the database's gauges."""
    body = await asyncio.to_thread(metrics.exposition, rt)
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)
