"""The FastAPI application: thin routes over the serving logic in chat.py and embeddings.py.

Cross-cutting concerns (API keys, metering, rate limits) belong in dependencies or middleware
added around these routes; the routes themselves only parse, call and answer.
"""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from starlette.exceptions import HTTPException

from modelatlas import __version__
from modelatlas.serve import chat, embeddings
from modelatlas.serve.errors import error_response
from modelatlas.serve.models import DEFAULT_QUEUE_SIZE, ModelPool
from modelatlas.serve.protocol import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorResponse,
    ModelCard,
    ModelList,
)

_ERRORS = {status: {"model": ErrorResponse} for status in (400, 404, 500, 503)}


def get_pool(request: Request) -> ModelPool:
    return request.app.state.pool


Pool = Annotated[ModelPool, Depends(get_pool)]


def create_app(models: list[str] | None = None, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> FastAPI:
    """The OpenAI-compatible API serving ``models`` (default: every runnable local model)."""
    pool = ModelPool.from_ids(models, queue_size)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await pool.aclose()

    app = FastAPI(title="modelatlas", version=__version__, lifespan=lifespan, responses=_ERRORS)
    app.state.pool = pool
    for kind in (Exception, RequestValidationError, HTTPException):
        app.add_exception_handler(kind, lambda request, exc: error_response(exc))
    _routes(app)
    return app


def _routes(app: FastAPI) -> None:
    @app.post("/v1/chat/completions", response_model=ChatCompletionResponse)
    async def chat_completions(req: ChatCompletionRequest, request: Request, pool: Pool):
        return await _answer(req, request, pool)

    @app.post("/v1/completions", response_model=CompletionResponse)
    async def completions(req: CompletionRequest, request: Request, pool: Pool):
        return await _answer(req, request, pool)

    @app.post("/v1/embeddings", response_model=EmbeddingResponse)
    async def create_embeddings(req: EmbeddingRequest, pool: Pool) -> EmbeddingResponse:
        return await embeddings.embed(pool, req)

    @app.get("/v1/models", response_model=ModelList)
    async def list_models(pool: Pool) -> ModelList:
        return ModelList(data=[_card(r) for r in pool.records.values()])

    @app.get("/health")
    async def health(pool: Pool) -> dict:
        return {"status": "ok", "models": list(pool.records), "loaded": pool.loaded}


async def _answer(req: chat.TextRequest, request: Request, pool: ModelPool):
    if not req.stream:
        return await chat.complete(pool, req)
    chunks = chat.open_stream(pool, req)
    try:
        first = await anext(chunks)
    except BaseException:
        await chunks.aclose()
        raise
    events = chat.sse_events(req, first, chunks, request.is_disconnected)
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _card(record) -> ModelCard:
    parent = record.base_model if record.base_model and record.id.startswith("ft/") else None
    return ModelCard(id=record.id, owned_by=record.provider or "modelatlas", parent=parent)
