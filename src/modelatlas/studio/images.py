"""The playground's image mode: one prompt drawn by up to four image generators side by side.

POST /api/playground/image takes ``{"models": [...], "prompt", "negative_prompt", "size", "steps",
"seed", "n"}`` and answers with newline-delimited JSON events, so that the page shows each
generator's progress while it denoises (a local pipeline on a CPU takes a while):
``{"type": "loading", "index"}`` when a model starts, ``{"type": "progress", "index", "done",
"total"}`` as its steps finish, one ``{"type": "images", "index", "images": [{"url", "width",
"height", "seed", "revised_prompt"}], "latency_s", "cost_usd", "cached"}`` or ``{"type":
"error", "index", "message"}`` per model, then ``{"type": "done"}``. Each image comes as a
``data:`` URL: nothing is written to disk, and the page needs no second request per picture.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import ConfigError, ModelAtlasError
from modelatlas.images import ImageParams, Images, parse_size
from modelatlas.parts import data_url
from modelatlas.studio.playground import (
    checked_model_ids,
    error_message,
    get_model,
    ndjson,
    page_picks,
    problem,
    read_json,
    unfit_reason,
)

MAX_IMAGES = 4  # pictures per model in the playground (a row of thumbnails per pane)
SIZES = ("", "256x256", "512x512", "768x768", "1024x1024", "512x768", "768x512")

router = APIRouter()


class ImageRequest(BaseModel):
    """What the image mode sends: the generators, the prompt and how to draw it."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(default_factory=list)
    prompt: str = ""
    negative_prompt: str | None = Field(None, max_length=2000)
    size: str | None = None  # WIDTHxHEIGHT; empty: each model's default
    steps: int | None = Field(None, ge=1, le=150)
    seed: int | None = Field(0, ge=0, le=2**32 - 1)
    n: int = Field(1, ge=1, le=MAX_IMAGES)


def image_params(req: ImageRequest) -> ImageParams:
    """The request's settings as the image contract takes them (a bad size says its form)."""
    size = (req.size or "").strip() or None
    if size is not None:
        try:
            parse_size(size)
        except ValueError as exc:
            raise ConfigError(f"The size is not one the playground can use: {exc}.") from None
    negative = (req.negative_prompt or "").strip() or None
    return ImageParams(size=size, n=req.n, steps=req.steps, seed=req.seed, negative_prompt=negative)


def can_generate(record) -> bool:
    """Whether the record's backend declares text to image for it."""
    from modelatlas.backends.declared import facts

    return facts(record).can("image_generation")


def cannot_generate(model_id: str) -> str | None:
    """Why ``model_id`` cannot draw here (unknown, or not an image generator); None if it can."""

    def why(record: ModelRecord) -> str:
        what = f"a {record.mode} model" if record.mode else "not an image generator"
        return f"{model_id} cannot make images: it is {what}. Pick an image-generation model."

    return unfit_reason(model_id, can_generate, why)


def image_model_ids() -> list[str]:
    """Ids of the runnable models that turn text into images."""
    from modelatlas.catalog.resolve import runnable_records

    return [r.id for r in runnable_records() if can_generate(r)]


def result_event(index: int, result: Images) -> dict[str, Any]:
    """One model's pictures as the page shows them (``model`` is left out: the arena hides it)."""
    pictures = [
        {
            "url": data_url(image.media_type, image.data),
            "width": image.width,
            "height": image.height,
            "seed": image.seed,
            "revised_prompt": image.revised_prompt,
        }
        for image in result.images
    ]
    return {
        "type": "images",
        "index": index,
        "images": pictures,
        "latency_s": result.timing.latency_s,
        "cost_usd": result.usage.cost_usd,
        "cached": result.cached,
    }


async def draw_one(
    index: int, model_id: str, prompt: str, params: ImageParams, emit: Callable[[dict], None]
) -> dict[str, Any]:
    """One model's pictures (its progress sent through ``emit`` meanwhile), or its error."""
    reason = cannot_generate(model_id)
    if reason is not None:
        return {"type": "error", "index": index, "message": reason}
    loop = asyncio.get_running_loop()

    def progress(done: int, total: int) -> None:  # called from the pipeline's worker thread
        event = {"type": "progress", "index": index, "done": done, "total": total}
        loop.call_soon_threadsafe(emit, event)

    try:
        emit({"type": "loading", "index": index})
        model = await get_model(model_id)
        await model.load()  # loaded first, so its latency is the drawing's alone
        result = await model.generate_image(prompt, params, progress=progress)
    except Exception as exc:  # shown in this model's pane; the others still draw
        return {"type": "error", "index": index, "message": error_message(exc)}
    return result_event(index, result)


async def draw_events(
    model_ids: list[str], prompt: str, params: ImageParams, on_result: Callable[[dict], None] | None = None
) -> AsyncIterator[dict[str, Any]]:
    """The events of every model drawing ``prompt`` at once, as they happen, then "done"."""
    queue: asyncio.Queue = asyncio.Queue()

    async def run(i: int, model_id: str) -> None:
        event = await draw_one(i, model_id, prompt, params, queue.put_nowait)
        if on_result:
            on_result(event)
        queue.put_nowait(event)

    tasks = [asyncio.create_task(run(i, m)) for i, m in enumerate(model_ids)]
    remaining = len(tasks)
    try:
        while remaining:
            event = await queue.get()
            if event["type"] in ("images", "error"):
                remaining -= 1
            yield event
        yield {"type": "done"}
    finally:  # the page went away: stop waiting on the others
        for task in tasks:
            task.cancel()


@router.post("/api/playground/image")
async def playground_image(request: Request):
    try:
        req = await read_json(request, ImageRequest)
        ids = checked_model_ids(req.models, "Choose an image generator in one of the lists.")
        if not req.prompt.strip():
            raise ConfigError("Write a prompt first.")
        params = image_params(req)
    except ModelAtlasError as exc:
        return problem(exc, exc.http_status if exc.http_status == 413 else 400)
    return ndjson(draw_events(ids, req.prompt, params))


def wants_images(mode: str, asked: list[str]) -> bool:
    """Whether /playground shows the image mode: asked for, or every model asked for draws images."""
    if mode in ("image", "text", "audio"):
        return mode == "image"
    return bool(asked) and all(cannot_generate(m) is None for m in asked)


def image_page(request: Request, asked: list[str]):
    """The playground's image mode, with ``asked`` picked (a model that cannot draw is said)."""
    from modelatlas.studio.web import render

    problems = [p for p in map(cannot_generate, asked) if p]
    choices, picked = page_picks(asked, image_model_ids(), problems, default=2)
    return render(
        request,
        "playground_image.html",
        mode="image",
        choices=choices,
        picked=picked,
        problems=problems,
        sizes=SIZES,
        max_images=MAX_IMAGES,
    )
