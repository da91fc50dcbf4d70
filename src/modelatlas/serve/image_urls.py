"""``image_url`` parts that name a web address rather than carry the image (a ``data:`` URL).

- A hosted model (the gateway: OpenAI, Azure, any OpenAI-compatible server) gets the URL
  unchanged, flag or not: its provider fetches it under its own limits, as it would for a client
  calling it directly, and this server makes no request (issue 12's rule, kept).
- A local model (a vision-language model in this process) needs the bytes, so this server would
  have to fetch them: a request on a client's behalf to anything the server can reach, its own
  network included. That is off unless the server was started with ``--allow-image-urls``
  (without it, a 400 that says to send a data URL); with it the image is fetched with httpx:
  http(s) only, a timeout, at most ``MAX_REDIRECTS`` redirects, an ``image/*`` content type,
  and no more than ``--max-image-mb``; anything else is a 400 naming the part.

A model that takes no images is left to the model's own check (a 400 naming what it accepts).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from modelatlas.errors import InvalidRequestError
from modelatlas.serve import protocol

DEFAULT_MAX_IMAGE_MB = 20.0  # OpenAI's limit for an image in a chat request
FETCH_TIMEOUT_S = 10.0
MAX_REDIRECTS = 3


@dataclass(frozen=True)
class ImageURLPolicy:
    allow: bool = False
    max_mb: float = DEFAULT_MAX_IMAGE_MB


async def resolve(req: protocol.ChatCompletionRequest, record, policy: ImageURLPolicy) -> None:
    """Check every web-address image part of ``req`` for a local model and replace it with the
    fetched image as a data URL (in place)."""
    from modelatlas.backends.declared import facts

    model_facts = facts(record)
    if "image" not in model_facts.accepts or model_facts.hosted:
        return  # the model's own check refuses the image, or its provider fetches the URL
    for where, image in _web_images(req):
        if not image.url.lower().startswith(("http://", "https://")):
            raise InvalidRequestError(
                f"'{where}': only data: and http(s) URLs are taken, not {image.url.split(':', 1)[0]!r}.",
                hint="Send the image as data:image/png;base64,<bytes>.",
                param=where,
            )
        if not policy.allow:
            raise InvalidRequestError(
                f"'{where}': this server does not fetch image URLs.",
                hint="Send the image's bytes as a data URL (data:image/png;base64,...), or start "
                "the server with --allow-image-urls.",
                param=where,
            )
        image.url = await fetch(image.url, where, policy.max_mb)


def _web_images(req: protocol.ChatCompletionRequest):
    for i, message in enumerate(req.messages):
        if not isinstance(message.content, list):
            continue
        for j, part in enumerate(message.content):
            if isinstance(part, protocol.ImageURLPart) and not part.image_url.url.startswith("data:"):
                yield f"messages[{i}].content[{j}].image_url.url", part.image_url


async def fetch(url: str, where: str, max_mb: float) -> str:
    """The image at ``url`` as a data URL, or a 400 saying why it could not be taken."""
    import httpx

    limit = int(max_mb * 2**20)
    try:
        async with (
            httpx.AsyncClient(
                timeout=FETCH_TIMEOUT_S, follow_redirects=True, max_redirects=MAX_REDIRECTS
            ) as client,
            client.stream("GET", url) as response,
        ):
            _check_answer(response, where, limit, max_mb)
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise _refused(where, f"the image is over this server's limit of {max_mb:g} MB")
    except httpx.TooManyRedirects:
        raise _refused(where, f"it redirects more than {MAX_REDIRECTS} times") from None
    except httpx.HTTPError as exc:
        raise _refused(where, f"it could not be fetched ({type(exc).__name__})") from None
    media_type = response.headers["content-type"].split(";")[0].strip().lower()
    return f"data:{media_type};base64,{base64.b64encode(bytes(body)).decode()}"


def _check_answer(response, where: str, limit: int, max_mb: float) -> None:
    """A 200 with an image content type, no longer (by its header) than the limit."""
    if response.status_code != 200:
        raise _refused(where, f"it answered HTTP {response.status_code}")
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not kind.startswith("image/"):
        raise _refused(where, f"it is not an image (content type {kind or 'none'!r})")
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise _refused(where, f"the image is over this server's limit of {max_mb:g} MB")


def _refused(where: str, why: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"'{where}': the image URL was not taken: {why}.",
        hint="Send the image's bytes as a data URL (data:image/png;base64,...) instead.",
        param=where,
    )
