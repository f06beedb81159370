"""GET /metrics: the Prometheus text format of the counters in service/observe/metrics.py."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from amllib.errors import NotFound
from service.http.openapi import errors
from service.observe.metrics import ServiceMetrics

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics (text format); a read token is enough",
    responses=errors(404, json_route=False, ok={"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}),
)
async def metrics(request: Request) -> Response:
    found: ServiceMetrics | None = request.app.state.metrics
    if found is None:
        raise NotFound("metrics are off (AZML_METRICS=false)")
    return Response(generate_latest(found.registry), media_type=CONTENT_TYPE_LATEST)
