"""Text to image through the OpenAI SDK's ``images.generate``: the request and the answer.

Three families answer there. OpenAI's GPT Image models (gpt-image-1, gpt-image-1-mini, ...)
always send the picture base64-encoded and refuse a ``response_format``; DALL-E 2 and 3 send a
URL unless asked for ``b64_json``, which is asked here so that no second request is needed; and
DALL-E 3 makes one picture a call, so ``n`` pictures are ``n`` calls. Azure deployments of those
models answer the same way. Any other OpenAI-compatible server (``base_url`` set; modelatlas
serve is one) is asked for ``b64_json`` and also sent what local pipelines take (seed,
negative prompt, steps, guidance) in the request body; OpenAI itself takes none of those, so
they are refused for it rather than silently dropped. Its images carry no seed (None).
"""

from __future__ import annotations

import base64
import re
import struct
from typing import Any

from modelatlas.errors import BackendError, InvalidRequestError
from modelatlas.images import GeneratedImage, ImageParams
from modelatlas.types import Usage

_GPT_IMAGE = re.compile(r"(^|[\s/-])(chat)?gpt-image", re.I)  # always base64, no response_format
_ONE_A_CALL = re.compile(r"dall-e-3", re.I)
_FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}
_LOCAL_ONLY = ("negative_prompt", "steps", "guidance")


def calls(remote_model: str, params: ImageParams) -> list[int]:
    """How many pictures each call asks for: one call, or ``n`` calls of one for DALL-E 3."""
    return [1] * params.n if _ONE_A_CALL.search(remote_model) else [params.n]


def request(
    remote_model: str, prompt: str, params: ImageParams, n: int, compatible: bool, family: str | None = None
) -> dict[str, Any]:
    """The arguments of ``images.generate`` for one call of ``n`` pictures. ``compatible``: the
    server is not OpenAI's (nor Azure's), so a local pipeline's knobs go in the body. ``family``:
    words that name the model (an Azure deployment's own name may not), default the model."""
    args: dict[str, Any] = {"model": remote_model, "prompt": prompt, "n": n}
    if params.size:
        args["size"] = params.size
    if params.quality:
        args["quality"] = params.quality
    if not _GPT_IMAGE.search(family or remote_model):
        args["response_format"] = "b64_json"
    extra = {"seed": params.seed} if params.seed is not None else {}
    extra.update({k: getattr(params, k) for k in _LOCAL_ONLY if getattr(params, k) is not None})
    if compatible and extra:
        args["extra_body"] = extra
    elif not compatible:
        given = [k for k in _LOCAL_ONLY if getattr(params, k) is not None]
        if given:
            raise InvalidRequestError(
                f"{remote_model} takes no {', '.join(given)}: OpenAI's images API has no such option.",
                hint="Leave it out (say what to avoid in the prompt itself), or use a local pipeline.",
                param=given[0],
            )
    return args


def images(response: Any, params: ImageParams, compatible: bool) -> list[GeneratedImage]:
    """The pictures of one SDK answer (an ``ImagesResponse``), decoded."""
    media_type = _FORMATS.get(str(getattr(response, "output_format", None) or "").lower())
    found = []
    for i, item in enumerate(response.data or []):
        if not item.b64_json:
            raise BackendError(
                "The image server answered with a URL instead of the picture's bytes.",
                hint="Use a server that honours response_format=b64_json (OpenAI, Azure, modelatlas serve).",
            )
        data = base64.b64decode(item.b64_json)
        width, height = dimensions(data) or params.dimensions() or (None, None)
        seed = params.seed + i if compatible and params.seed is not None else None
        found.append(
            GeneratedImage(
                data=data,
                media_type=media_type or sniff(data),
                width=width,
                height=height,
                seed=seed,
                revised_prompt=getattr(item, "revised_prompt", None),
            )
        )
    return found


def usage(responses: list[Any], count: int) -> Usage:
    """``images`` = the pictures made (what image models bill by); tokens where the server
    counts them (GPT Image models do)."""
    input_tokens = output_tokens = 0
    for response in responses:
        counted = getattr(response, "usage", None)
        if counted is not None:
            input_tokens += getattr(counted, "input_tokens", 0) or 0
            output_tokens += getattr(counted, "output_tokens", 0) or 0
    return Usage(input_tokens=input_tokens, output_tokens=output_tokens, images=count)


def sniff(data: bytes) -> str:
    """The media type the bytes' signature tells (PNG when unknown)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return "image/png"


def dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's header, without an imaging library; None for others."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return None
