"""GET /metrics: the server's Prometheus metrics (`server.metrics`) in the text format; open
when ``TWIN_METRICS_PUBLIC=true``, else read permission (a bearer token)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder
from starlette.concurrency import run_in_threadpool

from server.auth import OPTIONAL_BEARER, bearer_token
from server.deps import get_state
from server.schemas import errors
from server.state import TwinState

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_PLAIN_0_0_4: {}}, "description": "Metrics"},
               **errors(401, 403)},
    openapi_extra=OPTIONAL_BEARER,
)  # fmt: skip
async def metrics(request: Request, state: TwinState = Depends(get_state)) -> Response:
    """Every metric in the Prometheus text exposition format, or the format the scraper's
    ``Accept`` asks for (OpenMetrics); a token with read permission unless
    ``TWIN_METRICS_PUBLIC=true``."""
    if not state.settings.metrics_public:
        request.state.principal = state.tokens.resolve(bearer_token(request), "read")
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    body = await run_in_threadpool(encoder, state.metrics.registry)
    return Response(body, headers={"Content-Type": content_type})
