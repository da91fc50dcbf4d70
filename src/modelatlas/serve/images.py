"""Serving logic for POST /v1/images/generations: OpenAI's request in, its answer out
(``{created, data: [{b64_json | url, revised_prompt}], usage}``).

A request goes: checked (an empty prompt, ``n`` outside 1..10, a size that is not WIDTHxHEIGHT,
an unknown ``response_format``, an option no served model honours: a 400 naming the field
before anything runs) -> admitted against the key like every route (serve/app.py; a budget
reserves ``n`` pictures at the model's price per image) -> the model checked to make images (a
metered 400 for a chat model) -> made in the model's queue -> metered by the picture
(usage_records.images; cost = per_image x images).

``response_format`` defaults to ``b64_json`` (what GPT Image models always answer; nothing is
left on disk); ``url`` points at this server's own short-lived file route (serve/image_files.py).
``seed``, ``negative_prompt``, ``steps`` and ``guidance`` are extras a local pipeline takes (the
openai SDK sends them with ``extra_body``); a hosted model behind the gateway refuses the last
three. ``quality`` goes to a hosted model; a local pipeline has no quality setting (its steps
and guidance are the knobs) and makes the picture the same with any. ``user`` and
``moderation`` are accepted and go nowhere (the key already says who called).
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass
from typing import Literal

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, ValidationError

from modelatlas.errors import InvalidRequestError
from modelatlas.images import MAX_IMAGES, ImageParams, Images, parse_size
from modelatlas.serve.image_files import ROUTE
from modelatlas.serve.lifetime import metered_whole
from modelatlas.serve.metrics import note_model
from modelatlas.serve.models import check_can

ENDPOINT = "images.generations"
PATH = "/v1/images/generations"
FORMATS = ("b64_json", "url")
# OpenAI options the served models cannot honour: a 400 naming them rather than ignoring them.
_UNSUPPORTED = ("style", "background", "output_compression", "partial_images")


class ImageGenerationRequest(BaseModel):
    """OpenAI's request body, with a local pipeline's knobs as extras."""

    model_config = ConfigDict(strict=True, extra="ignore")

    model: str
    prompt: str
    n: int = 1
    size: str | None = None
    quality: str | None = None
    response_format: str | None = None
    output_format: str | None = None
    user: str | None = None
    stream: bool = False
    style: str | None = None
    background: str | None = None
    output_compression: int | None = None
    partial_images: int | None = None
    moderation: str | None = None  # accepted: the served models have no moderation to tune
    seed: int | None = None
    negative_prompt: str | None = None
    steps: int | None = None
    guidance: float | None = None


class ImageData(BaseModel):
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None


class InputTokensDetails(BaseModel):
    text_tokens: int = 0
    image_tokens: int = 0


class ImageUsage(BaseModel):
    """OpenAI's token usage (zero where the model counts none) and the pictures made."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_tokens_details: InputTokensDetails = InputTokensDetails()
    images: int = 0


class ImagesResponse(BaseModel):
    created: int
    data: list[ImageData]
    usage: ImageUsage
    output_format: Literal["png", "jpeg", "webp", "gif"] = "png"
    size: str | None = None


@dataclass
class ImageJob:
    """A checked request: what to make and how to answer."""

    model: str
    prompt: str
    params: ImageParams
    response_format: str = "b64_json"
    user: str | None = None


def prepare(req: ImageGenerationRequest) -> ImageJob:
    """The checked job, or a 400 that names what is wrong with the request."""
    if not req.prompt.strip():
        raise InvalidRequestError(
            "'prompt' is empty.",
            hint="Describe the picture to make, e.g. 'a lighthouse at dusk'.",
            param="prompt",
        )
    if not 1 <= req.n <= MAX_IMAGES:
        raise InvalidRequestError(
            f"'n' must be from 1 to {MAX_IMAGES}, not {req.n}.",
            hint="Ask for fewer images a call.",
            param="n",
        )
    fmt = req.response_format or "b64_json"
    if fmt not in FORMATS:
        raise InvalidRequestError(
            f"response_format {fmt!r} is not one of b64_json, url.", param="response_format"
        )
    if req.stream:
        raise InvalidRequestError(
            "Streaming image generation is not supported by this server.",
            hint="Leave 'stream' out (or send false): the pictures come in one answer.",
            param="stream",
        )
    if req.output_format not in (None, "png"):
        raise InvalidRequestError(
            f"output_format {req.output_format!r} is not supported: the served models make PNG.",
            hint="Leave output_format out, or send png.",
            param="output_format",
        )
    for name in _UNSUPPORTED:
        if getattr(req, name) is not None:
            raise InvalidRequestError(
                f"'{name}' is not supported by this server.", hint=f"Leave '{name}' out.", param=name
            )
    return ImageJob(req.model, req.prompt, _params(req), fmt, req.user)


def _params(req: ImageGenerationRequest) -> ImageParams:
    size = None if req.size in (None, "auto") else req.size
    if size is not None:
        try:
            parse_size(size)
        except ValueError as exc:
            raise InvalidRequestError(f"'size': {exc}.", param="size") from None
    values = {"size": size, "n": req.n, "quality": req.quality, "negative_prompt": req.negative_prompt}
    values.update(steps=req.steps, guidance=req.guidance, seed=0 if req.seed is None else req.seed)
    try:
        return ImageParams(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "body"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise InvalidRequestError(f"'{field}': {message}.", param=field) from None


async def answer(request: Request, job: ImageJob, ticket, headers: dict[str, str]):
    """Make ``job``'s pictures on the served model and close its ticket with their number. A
    client that leaves first is metered as cancelled (499), as on the chat routes."""
    state = request.app.state
    note_model(job.model)

    def start():
        _check_makes_images(state.pool.record(job.model))
        return _generate(state.pool, job)

    made = await metered_whole(request, ticket, start)
    if isinstance(made, Response):
        return made
    usage = made.usage
    count = usage.images or len(made.images)
    ticket.close(200, usage.input_tokens, usage.output_tokens, images=count)
    # url: the files are written off the event loop
    body = await asyncio.to_thread(_response, made, job, state.image_files, str(request.base_url))
    return Response(body.model_dump_json(exclude_none=True), media_type="application/json", headers=headers)


async def _generate(pool, job: ImageJob) -> Images:
    async with pool.slot(job.model):
        model = await pool.get(job.model)
        return await model.generate_image(job.prompt, job.params)


def _response(made: Images, job: ImageJob, files, base_url: str) -> ImagesResponse:
    data = []
    for image in made.images:
        if job.response_format == "url":
            name = files.save(image.data, image.suffix())
            data.append(
                ImageData(url=f"{base_url.rstrip('/')}{ROUTE}/{name}", revised_prompt=image.revised_prompt)
            )
        else:
            encoded = base64.b64encode(image.data).decode()
            data.append(ImageData(b64_json=encoded, revised_prompt=image.revised_prompt))
    first = made.images[0] if made.images else None
    size = f"{first.width}x{first.height}" if first and first.width and first.height else None
    kind = (first.suffix().lstrip(".") if first else "png").replace("jpg", "jpeg")
    u = made.usage
    usage = ImageUsage(
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        total_tokens=u.input_tokens + u.output_tokens,
        input_tokens_details=InputTokensDetails(text_tokens=u.input_tokens),
        images=u.images or len(made.images),
    )
    return ImagesResponse(created=int(time.time()), data=data, usage=usage, output_format=kind, size=size)


def _check_makes_images(record) -> None:
    check_can(record, "image_generation", "make images", "an image-generation")
