"""The FastAPI application: thin routes over the serving logic in chat.py, embeddings.py,
transcriptions.py and images.py.

Every model route authenticates the caller (a dependency), admits the request against the
key's model list and limits, and meters what it used (serve/auth.py, limits.py, metering.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, StreamingResponse
from starlette.exceptions import HTTPException

from modelatlas import __version__
from modelatlas.config import settings
from modelatlas.errors import ModelAtlasError, UnknownModelError
from modelatlas.serve import (
    chat,
    embeddings,
    image_files,
    image_urls,
    images,
    openapi,
    responses,
    transcriptions,
)
from modelatlas.serve.access_log import AccessLog, note_user
from modelatlas.serve.auth import Gate
from modelatlas.serve.errors import ShuttingDownError, error_response
from modelatlas.serve.guard import DEFAULT_MAX_BODY_MB, DEFAULT_READ_TIMEOUT_S, KEY_SCOPE, RequestGuard
from modelatlas.serve.image_files import DEFAULT_TTL_S, ImageFiles
from modelatlas.serve.lifetime import DEFAULT_SHUTDOWN_TIMEOUT_S, ClientLeft, Shutdown, watched
from modelatlas.serve.limits import RateLimiter
from modelatlas.serve.metering import Meter
from modelatlas.serve.metrics import CONTENT_TYPE, Metrics, MetricsMiddleware
from modelatlas.serve.models import DEFAULT_QUEUE_SIZE, ServedModels, check_endpoint
from modelatlas.serve.prices import PriceBook
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
from modelatlas.serve.reserve import worst_case
from modelatlas.serve.tokenize import (
    DetokenizeRequest,
    DetokenizeResponse,
    TokenizeRequest,
    TokenizeResponse,
    TokenizerInfo,
    detokenize,
    tokenize,
    tokenizer_info,
)
from modelatlas.serve.usage import UsageReport, report
from modelatlas.store.keys import KeyInfo
from modelatlas.store.usage import settle_dead_servers

_ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 403, 404, 408, 413, 429, 500, 502, 503)}


def get_pool(request: Request) -> ServedModels:
    return request.app.state.pool


async def get_key(request: Request) -> KeyInfo | None:
    if KEY_SCOPE in request.scope:  # checked already, before the body was read (serve/guard.py)
        return request.scope[KEY_SCOPE]
    return await request.app.state.gate.authenticate(request.headers.get("authorization"))


Pool = Annotated[ServedModels, Depends(get_pool)]
Key = Annotated[KeyInfo | None, Depends(get_key)]
TranscriptionForm = Annotated[transcriptions.TranscriptionForm, Depends(transcriptions.read_form)]


def create_app(
    models: list[str] | None = None,
    *,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    auth: bool = True,
    prices: PriceBook | None = None,
    memory_budget_gb: float | None = None,
    parallel: int = 4,
    max_body_mb: float = DEFAULT_MAX_BODY_MB,
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
    shutdown_timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S,
    host: str | None = None,
    max_audio_mb: float = transcriptions.DEFAULT_MAX_AUDIO_MB,
    allow_image_urls: bool = False,
    max_image_mb: float = image_urls.DEFAULT_MAX_IMAGE_MB,
    image_url_ttl_s: float = DEFAULT_TTL_S,
    allow_chat_on_base: bool = False,
) -> FastAPI:
    """The OpenAI-compatible API serving ``models`` (default: every runnable local model);
    llama.cpp models decode up to ``parallel`` requests together. Without ``auth`` it answers
    only loopback Host headers and ``host`` (the address it listens on). An audio upload may
    be up to ``max_audio_mb``, whatever ``max_body_mb`` allows a JSON request. An ``image_url``
    part naming a web address is fetched (up to ``max_image_mb``) only with ``allow_image_urls``
    (serve/image_urls.py); generated pictures asked for as URLs last ``image_url_ttl_s``.
    A base model (mode completion) answers chat only with ``allow_chat_on_base``."""
    pool = ServedModels.from_ids(models, queue_size, memory_budget_gb)
    prices = prices or PriceBook()
    pool.records = {i: _batched(prices.apply(r), parallel) for i, r in pool.records.items()}
    limiter = RateLimiter()
    metrics = Metrics(pool)
    meter = Meter(limiter, metrics)

    shutdown = Shutdown(shutdown_timeout_s)
    lifespan = _lifespan(pool, meter, shutdown)
    app = FastAPI(title="modelatlas", version=__version__, lifespan=lifespan, responses=_ERRORS)
    app.state.pool, app.state.meter = pool, meter
    app.state.gate = Gate(auth, limiter)
    app.state.metrics = metrics
    app.state.shutdown = shutdown
    app.state.responses = responses.ResponseStore()  # for previous_response_id
    app.state.allow_chat_on_base = allow_chat_on_base
    _media_state(app, max_audio_mb, allow_image_urls, max_image_mb, image_url_ttl_s)
    hosts = None if auth else [host] if host else []
    _middleware(app, metrics, hosts, max_body_mb, read_timeout_s, max_audio_mb)
    _error_handlers(app)
    _routes(app)
    openapi.install(app, auth)
    return app


def _lifespan(pool: ServedModels, meter: Meter, shutdown: Shutdown):
    """The app's lifespan: binds the shutdown to the loop, settles dead servers, closes at the end."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        shutdown.bind(asyncio.get_running_loop())
        await asyncio.to_thread(settle_dead_servers)  # a killed server's requests: interrupted
        yield
        await pool.aclose()
        await asyncio.to_thread(meter.close)

    return lifespan


def _media_state(
    app: FastAPI, max_audio_mb: float, allow_image_urls: bool, max_image_mb: float, image_url_ttl_s: float
) -> None:
    """Set app.state's audio upload limit, image URL policy and served image files."""
    app.state.max_audio_mb = max_audio_mb
    app.state.image_urls = image_urls.ImageURLPolicy(allow_image_urls, max_image_mb)
    app.state.image_files = ImageFiles(settings().cache_dir / "served-images", image_url_ttl_s)


def _middleware(
    app: FastAPI,
    metrics: Metrics,
    hosts: list[str] | None,
    max_body_mb: float,
    read_timeout_s: float,
    max_audio_mb: float,
) -> None:
    """Add the request guard, the metrics and the access log middleware, innermost first."""
    guard = {"max_body_mb": max_body_mb, "read_timeout_s": read_timeout_s, "hosts": hosts}
    # The multipart envelope and the other fields: a megabyte over the file's own limit.
    guard["path_limits_mb"] = {transcriptions.PATH: max(max_body_mb, max_audio_mb + 1)}
    app.add_middleware(RequestGuard, gate=app.state.gate, **guard)  # inside the metrics: counted
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(AccessLog)  # outermost: its note sees the key checked by the guard


def _error_handlers(app: FastAPI) -> None:
    """Answer every error as an OpenAI-style error response."""
    # Our errors get their own handler: the one for Exception runs in Starlette's outermost
    # middleware, which answers and then re-raises (a logged traceback for a plain 404).
    for kind in (ModelAtlasError, Exception, RequestValidationError, HTTPException):
        app.add_exception_handler(kind, lambda request, exc: error_response(exc))


def _batched(record, parallel: int):
    """The record set to decode ``parallel`` requests together, where its backend batches."""
    from modelatlas.backends.declared import with_parallel

    return with_parallel(record, parallel)


def _routes(app: FastAPI) -> None:
    """Add every route: text, media, then information."""
    _text_routes(app)
    _media_routes(app)
    _info_routes(app)
    _tokenizer_routes(app)


def _text_routes(app: FastAPI) -> None:
    """The chat completion, completion and embedding routes."""

    @app.post("/v1/chat/completions", response_model=ChatCompletionResponse)
    async def chat_completions(req: ChatCompletionRequest, request: Request, key: Key):
        return await _answer(req, request, key, "chat.completions")

    @app.post(responses.PATH, response_model=responses.ResponseObject)
    async def create_response(req: responses.ResponsesRequest, request: Request, key: Key):
        """OpenAI's Responses API (client.responses.create), over the same models as chat."""
        reserved = responses.reserved(req)
        note_user(req)
        ticket, headers = await _admit(request, key, req.model, responses.ENDPOINT, req.stream, reserved)
        return await responses.answer(request, req, ticket, headers)

    @app.post("/v1/completions", response_model=CompletionResponse)
    async def completions(req: CompletionRequest, request: Request, key: Key):
        return await _answer(req, request, key, "completions")

    @app.post("/v1/embeddings", response_model=EmbeddingResponse)
    async def create_embeddings(req: EmbeddingRequest, request: Request, response: Response, key: Key):
        ticket, headers = await _admit(request, key, req.model, "embeddings", False, req)
        try:
            answer = await embeddings.embed(request.app.state.pool, req)
        except BaseException as exc:
            ticket.fail(exc)
            raise
        ticket.close(200, answer.usage.prompt_tokens)
        response.headers.update(headers)
        return answer


def _media_routes(app: FastAPI) -> None:
    """The transcription, image generation and generated image file routes."""

    @app.post(transcriptions.PATH, response_model=transcriptions.ANSWER, responses=transcriptions.RESPONSES)
    async def create_transcription(request: Request, key: Key, form: TranscriptionForm):
        """Speech to text, as OpenAI's (a multipart upload, as the openai SDK sends it)."""
        job = await transcriptions.prepare(form, request.app.state.max_audio_mb)
        ticket, headers = await _admit(request, key, job.model, transcriptions.ENDPOINT, False, job)
        return await transcriptions.answer(request, job, ticket, headers)

    @app.post(images.PATH, response_model=images.ImagesResponse)
    async def create_image(req: images.ImageGenerationRequest, request: Request, key: Key):
        """Text to image, as OpenAI's (client.images.generate); metered by the picture."""
        job = images.prepare(req)
        ticket, headers = await _admit(request, key, job.model, images.ENDPOINT, False, job)
        return await images.answer(request, job, ticket, headers)

    @app.get(image_files.ROUTE + "/{name}", response_class=FileResponse)
    async def image_file(name: str, request: Request) -> FileResponse:
        """A picture made with response_format "url": no key needed (the URL is the secret),
        gone after the server's --image-url-ttl."""
        path, media_type, left = await asyncio.to_thread(request.app.state.image_files.open, name)
        cache = {"Cache-Control": f"private, max-age={int(left)}"}
        return FileResponse(path, media_type=media_type, headers=cache)


def _info_routes(app: FastAPI) -> None:
    """The model list, usage, metrics and health routes."""

    @app.get("/v1/models", response_model=ModelList)
    async def list_models(pool: Pool, key: Key) -> ModelList:
        records = [r for r in pool.records.values() if key is None or key.allows(r.id)]
        return ModelList(data=[_card(r) for r in records])

    @app.get("/v1/models/{model_id:path}", response_model=ModelCard)
    async def retrieve_model(model_id: str, pool: Pool, key: Key) -> ModelCard:
        """One served model (ids hold a slash: local/smollm2-135m-instruct); 404 otherwise."""
        allowed = [m for m in pool.records if key is None or key.allows(m)]
        if model_id not in allowed:
            raise UnknownModelError(model_id, allowed)
        return _card(pool.records[model_id])

    @app.get("/v1/usage", response_model=UsageReport)
    async def usage(
        request: Request,
        key: Key,
        by: Annotated[Literal["day", "model"], Query()] = "day",
        since: Annotated[str | None, Query(description="ISO 8601 date or date-time")] = None,
    ) -> UsageReport:
        return await report(request.app.state.meter, key, by, since)

    @app.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
    async def metrics(request: Request) -> Response:
        """Prometheus metrics (no API key needed, like /health)."""
        return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/health")
    async def health(pool: Pool) -> dict:
        return {"status": "ok", "models": list(pool.records), "loaded": pool.loaded}


def _tokenizer_routes(app: FastAPI) -> None:
    """A served model's own tokenizer, as vLLM serves it (lm-eval's tokenizer_backend=remote)."""

    @app.post("/tokenize", response_model=TokenizeResponse)
    async def tokenize_text(req: TokenizeRequest, pool: Pool, key: Key):
        return await tokenize(pool, key, req)

    @app.post("/detokenize", response_model=DetokenizeResponse)
    async def detokenize_tokens(req: DetokenizeRequest, pool: Pool, key: Key):
        return await detokenize(pool, key, req)

    @app.get("/tokenizer_info", response_model=TokenizerInfo)
    async def get_tokenizer_info(pool: Pool, key: Key, model: Annotated[str | None, Query()] = None):
        return await tokenizer_info(pool, key, model)


async def _admit(request: Request, key: KeyInfo | None, model_id: str, endpoint: str, streamed: bool, req):
    state = request.app.state
    note_user(req)  # for the access line
    if model_id not in state.pool.records and key is not None:
        # "Did you mean" only among the models this key may use: the others stay unnamed.
        raise UnknownModelError(model_id, [m for m in state.pool.records if key.allows(m)])
    record = state.pool.record(model_id)
    worst = await worst_case(state.pool, key, record, req)  # reserved until the ticket closes
    headers, hold = await state.gate.admit(key, model_id, worst)
    return state.meter.ticket(key, record, endpoint, streamed, hold), headers


async def _answer(req: chat.TextRequest, request: Request, key: KeyInfo | None, endpoint: str):
    pool, shutdown = request.app.state.pool, request.app.state.shutdown
    ticket, headers = await _admit(request, key, req.model, endpoint, req.stream, req)
    try:  # a base model asked to chat, a chat-only one to complete: a metered 400
        check_endpoint(pool.record(req.model), endpoint, request.app.state.allow_chat_on_base)
    except BaseException as exc:
        ticket.fail(exc)
        raise
    if isinstance(req, ChatCompletionRequest):  # image URLs: refused, passed on or fetched
        try:
            await image_urls.resolve(req, pool.record(req.model), request.app.state.image_urls)
        except BaseException as exc:
            ticket.fail(exc)
            raise
    if not req.stream:
        return await _whole(req, request, ticket, headers)
    chunks = chat.open_stream(pool, req)
    try:
        first = await anext(chunks)
    except BaseException as exc:
        ticket.fail(exc)
        await chunks.aclose()
        raise
    model = await pool.get(req.model)
    events = chat.sse_events(req, first, chunks, request.is_disconnected, ticket, model, shutdown)
    headers = {"Cache-Control": "no-cache", **headers}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


async def _whole(req: chat.TextRequest, request: Request, ticket, headers: dict[str, str]) -> Response:
    """A whole answer; a client that leaves first cancels the generation, which frees its
    slot, and is metered for what was generated, as cancelled (status 499, nginx's
    "client closed request")."""
    state, progress = request.app.state, chat.Progress()
    try:
        answer = await watched(chat.complete(state.pool, req, progress), request.receive, state.shutdown)
    except ClientLeft:
        ticket.close(499, *progress.counted(req), cancelled=True)
        return Response(status_code=499)
    except BaseException as exc:
        if isinstance(exc, ShuttingDownError):
            ticket.close(exc.http_status, *progress.counted(req), cancelled=True)
        ticket.fail(exc)
        raise
    ticket.close(200, answer.usage.prompt_tokens, answer.usage.completion_tokens)
    return _with_headers(answer, headers)


def _with_headers(answer, headers: dict[str, str]) -> Response:
    return Response(answer.model_dump_json(), media_type="application/json", headers=headers)


def _card(record) -> ModelCard:
    parent = record.base_model if record.base_model and record.id.startswith("ft/") else None
    return ModelCard(id=record.id, owned_by=record.provider or "modelatlas", parent=parent)
