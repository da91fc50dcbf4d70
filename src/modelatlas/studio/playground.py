"""The playground: one prompt to up to four models side by side, streamed as it is generated.

POST /api/playground/stream answers with newline-delimited JSON events:
``{"type": "loading", "index": i}`` and ``{"type": "loaded", "index": i, "load_s": ...}`` when
this request had to load model ``i``, ``{"type": "delta", "index": i, "text": ...}`` as it writes,
one ``{"type": "stats", "index": i, ...}`` (tokens, the finish reason, the load, time to first
token after it, tokens/s, cost) or ``{"type": "error", "index": i, "message": ...}`` per model,
then ``{"type": "done"}``.
Models come from the process's model pool: the studio is one user of each model it has opened,
kept loaded for the life of the studio process (``release_models`` lets them go).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelatlas.backends.model import Model
from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import ConfigError, ModelAtlasError
from modelatlas.parts import ImagePart
from modelatlas.studio import vision
from modelatlas.studio.web import render
from modelatlas.types import Chunk, Prompt

MAX_MODELS = 4
TEXT_MODES = ("chat", "completion")
NDJSON = "application/x-ndjson"

router = APIRouter()
_loaded: dict[str, Model] = {}  # the studio's models, each held in the process's pool


class PromptRequest(BaseModel):
    """What the playground sends: the models, the prompt and the sampling settings."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(default_factory=list)
    prompt: str = ""
    system: str | None = None
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(256, ge=1, le=8192)
    images: list[str] = Field(default_factory=list)  # data: URLs (studio/vision.py checks them)


async def get_model(model_id: str) -> Model:
    """The studio's one Model for ``model_id``, opened on first use (loaded at its first call).

    Local llama.cpp models decode through a batch of their own (``parallel``): each decode step
    is one job on the shared engine thread, so two local models take turns token by token and
    both panes stream at once, instead of the second waiting for the whole first answer."""
    model = _loaded.get(model_id)
    if model is None:
        from modelatlas.backends.declared import with_parallel
        from modelatlas.backends.pool import ModelSettings, shared_pool

        record = with_parallel(studio_record(model_id), INTERLEAVE)
        opened = await shared_pool().acquire(record, ModelSettings(log_calls=True))
        model = _loaded.setdefault(model_id, opened)
        if model is not opened:  # two first requests at once: keep one hold on it
            await shared_pool().release(opened)
    return model


async def release_models() -> None:
    """Let the studio's models go (each closes unless another user of the pool holds it)."""
    from modelatlas.backends.pool import shared_pool

    held = list(_loaded.values())
    _loaded.clear()
    for model in held:
        await shared_pool().release(model)


INTERLEAVE = 2  # sequences per local model: the playground and the arena ask one prompt at a time


def studio_record(model_id: str) -> ModelRecord:
    """The record of a model id: a bundled, registered or catalog model, never a file path.

    The CLI's ``resolve`` also takes a path and looks at the disk, so its error said whether a
    file existed; a web page must not learn that about this machine (any page could ask before
    the studio refused other hosts). A path is refused by its shape alone, before any lookup."""
    from modelatlas import store
    from modelatlas.catalog.bundled import is_bundled, resolve_bundled
    from modelatlas.catalog.catalog import load_catalog

    if is_bundled(model_id):
        return resolve_bundled(model_id)
    data = store.get_registered(model_id)
    if data is not None:
        return ModelRecord.model_validate(data)
    if looks_like_path(model_id):
        raise ConfigError(
            f"The studio takes model ids, not file paths ({model_id[:80]!r}).",
            hint="Add the file as a model first (modelatlas models add ID --path FILE), then pick ID.",
        )
    return load_catalog().get(model_id)


def looks_like_path(model_id: str) -> bool:
    """A file path by its spelling (without looking at the disk)."""
    text = model_id.strip()
    return (
        text.startswith((".", "/", "~", "\\"))
        or "\\" in text
        or text.lower().endswith((".gguf", ".bin", ".safetensors"))
        or (len(text) > 1 and text[1] == ":")  # C:\models
    )


def text_model_ids() -> list[str]:
    """Ids of the runnable models that write text (chat and completion models)."""
    from modelatlas.catalog.resolve import runnable_records

    return [r.id for r in runnable_records() if r.mode in TEXT_MODES]


def checked_model_ids(model_ids: list[str], hint: str) -> list[str]:
    """The ids a playground request names, blanks dropped: at least one (``hint`` says where to
    pick it) and at most MAX_MODELS. The text, image and audio modes check their lists alike."""
    ids = [m.strip() for m in model_ids if m and m.strip()]
    if not ids:
        raise ConfigError("Pick at least one model.", hint=hint)
    if len(ids) > MAX_MODELS:
        raise ConfigError(f"The playground compares at most {MAX_MODELS} models, not {len(ids)}.")
    return ids


def page_picks(
    asked: list[str], runnable: list[str], problems: list[str], default: int
) -> tuple[list[str], list[str]]:
    """A playground page's model lists: the choices (the ``runnable`` ids, then any asked for that
    are not among them) and what each of the MAX_MODELS lists shows picked (the asked ids, else
    the first ``default`` choices; "" for none). More than MAX_MODELS asked: the first are kept and
    ``problems`` says so. The text, image and audio modes fill their pages alike."""
    if len(asked) > MAX_MODELS:
        problems.append(
            f"The playground compares at most {MAX_MODELS} models: the first {MAX_MODELS} are kept."
        )
        asked = asked[:MAX_MODELS]
    choices = runnable + [m for m in asked if m not in runnable]
    picked = asked or choices[:default]
    return choices, picked + [""] * (MAX_MODELS - len(picked))


async def open_models(model_ids: list[str], prompt: str, system: str | None) -> list[Model]:
    """The models to ask, checked before anything is streamed (a ModelAtlasError says why not)."""
    ids = checked_model_ids(model_ids, "Choose a model in one of the model lists.")
    if not prompt.strip():
        raise ConfigError("Write a prompt first.")
    models = [await get_model(m) for m in ids]
    for model in models:
        model.prompt_for(prompt, system)  # an embedding model fails here, with a clear message
    return models


async def stream_events(
    models: list[Model],
    req: PromptRequest,
    on_text: Callable[[int, str], None] | None = None,
    images: list[ImagePart] | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """The events of one prompt (with its ``images``, if any) answered by every model, as they
    happen: each model loads (if it must), then writes, on its own, so one slow load does not hold
    back the other panes; one model's failure is its own error event and the others go on."""
    params = {"temperature": req.temperature, "max_tokens": req.max_tokens}
    system = req.system or None
    prompt_of = vision.prompt_maker(images or [], req.prompt, system) or (
        lambda model: model.prompt_for(req.prompt, system)
    )
    streams = [model_events(i, m, prompt_of, params, on_text) for i, m in enumerate(models)]
    async for event in interleaved(streams):
        yield event
    yield {"type": "done"}


async def model_events(
    index: int,
    model: Model,
    prompt_of: Callable[[Model], Prompt],
    params: dict[str, Any],
    on_text: Callable[[int, str], None] | None,
) -> AsyncGenerator[dict[str, Any]]:
    """One model's events: ``loading`` and ``loaded`` (with ``load_s``) when this request had to
    load it, a ``delta`` per piece of text, then ``stats``. What ``prompt_of`` raises (a model
    that takes no images) comes first, before any load. The load is timed here, in the request
    that waited for it: the wrapper loads before it starts its clock, so its time to first token
    leaves the load out, and the page must not."""
    prompt = prompt_of(model)
    load_s = None
    if not model.loaded:
        yield {"type": "loading", "index": index}
        start = time.perf_counter()
        await model.load()
        load_s = round(time.perf_counter() - start, 3)
        yield {"type": "loaded", "index": index, "load_s": load_s}
    async for chunk in model.stream(prompt, **params):
        if chunk.text:
            if on_text:
                on_text(index, chunk.text)
            yield {"type": "delta", "index": index, "text": chunk.text}
        elif chunk.finish_reason:
            yield {"type": "stats", "index": index, "load_s": load_s, **chunk_stats(chunk)}


async def interleaved(streams: list[AsyncGenerator[dict[str, Any]]]) -> AsyncIterator[dict[str, Any]]:
    """The events of every stream as each one comes; a stream that fails ends with an ``error``
    event for its index (its position in ``streams``) instead of stopping the others."""
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    async def pump(index: int, events: AsyncGenerator[dict[str, Any]]) -> None:
        try:
            async with contextlib.aclosing(events):
                async for event in events:
                    await queue.put(event)
        except Exception as exc:
            await queue.put({"type": "error", "index": index, "message": error_message(exc)})
        finally:
            await queue.put(None)

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    remaining = len(tasks)
    try:
        while remaining:
            event = await queue.get()
            if event is None:
                remaining -= 1
            else:
                yield event
    finally:
        for task in tasks:
            task.cancel()


def chunk_stats(chunk: Chunk) -> dict[str, Any]:
    """Tokens, timing and cost of one finished answer (the last chunk of its stream)."""
    usage, timing = chunk.usage, chunk.timing
    return {
        "finish_reason": chunk.finish_reason,
        "input_tokens": usage.input_tokens if usage else 0,
        "output_tokens": usage.output_tokens if usage else 0,
        "cost_usd": usage.cost_usd if usage else 0.0,
        "latency_s": timing.latency_s if timing else None,
        "ttft_s": timing.ttft_s if timing else None,
        "tokens_per_s": timing.tokens_per_s if timing else None,
    }


def unfit_reason(
    model_id: str, fits: Callable[[ModelRecord], bool], why: Callable[[ModelRecord], str]
) -> str | None:
    """Why ``model_id`` cannot serve a playground mode: the lookup's error (an unknown id), else
    ``why(record)`` when ``fits(record)`` is false; None when it fits. The image, audio and vision
    checks share this shape and differ only in what fits and what is said."""
    try:
        record = studio_record(model_id)
    except ModelAtlasError as exc:
        return error_message(exc)
    return None if fits(record) else why(record)


def error_message(exc: BaseException) -> str:
    """What to show for a failure: the message and its hint, never a stack trace."""
    if isinstance(exc, ModelAtlasError):
        return f"{exc.message} {exc.hint}" if exc.hint else exc.message
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return f"{type(exc).__name__}: {exc}"


def ndjson(events: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    async def lines() -> AsyncIterator[bytes]:
        async for event in events:
            yield (json.dumps(event) + "\n").encode()

    return StreamingResponse(lines(), media_type=NDJSON, headers={"Cache-Control": "no-store"})


def problem(exc: BaseException, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error_message(exc)}, status_code=status)


Body = TypeVar("Body", bound=BaseModel)


async def read_json(request: Request, schema: type[Body]) -> Body:
    """A request's JSON body as ``schema`` (a ConfigError says what is wrong with it)."""
    body = await vision.read_body(request)  # refused (413) past the images' limit
    try:
        return schema.model_validate(json.loads(body or b"null"))
    except ValueError as exc:  # bad JSON or a field out of range (ValidationError is a ValueError)
        raise ConfigError(error_message(exc)) from exc


@router.post("/api/playground/stream")
async def playground_stream(request: Request) -> Response:
    try:
        req = await read_json(request, PromptRequest)
        images = vision.decode_images(req.images)
        models = await open_models(req.models, req.prompt, req.system)
    except ModelAtlasError as exc:
        return problem(exc, vision.request_status(exc))
    return ndjson(stream_events(models, req, images=images))


def model_problems(model_ids: list[str]) -> list[str]:
    """A message for each id that names no model this studio can find, or one that writes no text."""
    problems = []
    for model_id in model_ids:
        try:
            record = studio_record(model_id)
        except ModelAtlasError as exc:
            problems.append(error_message(exc))
            continue
        if record.mode == "transcription":
            problems.append(f"{model_id} is a speech-recognition model: it takes audio, not a prompt.")
        elif record.mode == "image_generation":
            problems.append(f"{model_id} makes images: try it in the playground's image mode.")
        elif record.mode not in TEXT_MODES:
            problems.append(f"{model_id} is an {record.mode} model: it makes vectors, not text.")
    return problems


KIND_OF_MODE = {"completion": "base", "transcription": "speech", "image_generation": "image"}


def model_kinds(record: ModelRecord) -> list[str]:
    """The labels the playground shows for a model, from its catalog record: its kind by mode
    (base for a completion model, chat, speech, image or embedding), then code where its tasks
    say it writes code and vision where it takes images."""
    kinds = [KIND_OF_MODE.get(record.mode, record.mode)]
    if "code" in record.tasks:
        kinds.append("code")
    takes = record.modalities is not None and "image" in record.modalities.input
    if record.mode == "chat" and (takes or vision.takes_images(record)):
        kinds.append("vision")
    return kinds


def kinds_of(model_ids: list[str]) -> dict[str, list[str]]:
    """Each id's labels (see :func:`model_kinds`); an id the studio cannot find has none. The
    runnable records are read as they are: resolving a bundled id again can mean joining its file."""
    from modelatlas.catalog.resolve import runnable_records

    known = {r.id: r for r in runnable_records()}
    kinds = {}
    for model_id in model_ids:
        try:
            kinds[model_id] = model_kinds(known.get(model_id) or studio_record(model_id))
        except ModelAtlasError:
            continue
    return kinds


@router.get("/playground")
def playground_page(request: Request, models: str = "", mode: str = ""):
    from modelatlas.studio import audio, images

    asked = list(dict.fromkeys(m.strip() for m in models.split(",") if m.strip()))
    if images.wants_images(mode, asked):
        return images.image_page(request, asked)
    if audio.wants_audio(mode, asked):
        return audio.audio_page(request, asked)
    problems = model_problems(asked)
    choices, picked = page_picks(asked, text_model_ids(), problems, default=2)
    return render(
        request,
        "playground.html",
        choices=choices,
        picked=picked,
        problems=problems,
        kinds=kinds_of(choices),
        **vision.page_facts(choices),
    )
