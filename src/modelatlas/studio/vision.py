"""Images in the playground and the arena: the pictures a prompt carries, checked and turned into parts.

The page sends each image as a ``data:image/...;base64,`` URL (what a browser's FileReader gives)
in the ``images`` list of the usual JSON request; a prompt with images becomes one user Message
of ImageParts and the text. Models whose backend takes no images are not sent anything: their
pane says so (the page says it too, before the run), because a text-only model asked about a
picture it never saw would answer about nothing, and the comparison would mislead.

Base64 in JSON rather than a multipart upload, as in the audio mode (studio/audio.py): the
studio has no multipart parser. The body is read in pieces and refused (413) as soon as it
passes the limit, so an oversized upload is never held in memory whole.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from modelatlas.backends.model import Model
from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import ConfigError, InvalidRequestError, ModelAtlasError
from modelatlas.parts import ImagePart, TextPart
from modelatlas.types import Message, Prompt

MAX_IMAGES = 4  # a prompt's pictures
MAX_IMAGE_BYTES = 10 * 1024 * 1024  # each picture's bytes
MAX_IMAGE_MB = MAX_IMAGE_BYTES // (1024 * 1024)
# The JSON body: every image as base64 (4 characters per 3 bytes) and room for the prompt.
MAX_BODY_BYTES = 4 * -(-MAX_IMAGES * MAX_IMAGE_BYTES // 3) + 1024 * 1024
MEDIA_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")


class ImagesTooLargeError(InvalidRequestError):
    """A request over the playground's image limit (HTTP 413)."""

    http_status = 413


def too_large(what: str, size: int, limit: int) -> ImagesTooLargeError:
    return ImagesTooLargeError(
        f"{what} is {size / 1024 / 1024:.1f} MB; the playground takes at most {limit / 1024 / 1024:.0f} MB.",
        hint=f"Use smaller images (each up to {MAX_IMAGE_MB} MB, at most {MAX_IMAGES}), "
        "for example a JPEG or a screenshot scaled down.",
    )


async def read_body(request: Request) -> bytes:
    """The request body, refused (413) as soon as it passes MAX_BODY_BYTES."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large("The request", int(declared), MAX_BODY_BYTES)
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > MAX_BODY_BYTES:
            raise too_large("The request", len(body), MAX_BODY_BYTES)
    return bytes(body)


def decode_images(urls: list[str]) -> list[ImagePart]:
    """The images of a request as parts, each checked (a ModelAtlasError says what is wrong)."""
    if len(urls) > MAX_IMAGES:
        raise ConfigError(
            f"A prompt takes at most {MAX_IMAGES} images, not {len(urls)}.", hint="Remove some images."
        )
    return [decode_image(i, url) for i, url in enumerate(urls, start=1)]


def decode_image(number: int, url: str) -> ImagePart:
    if not url.startswith("data:image/"):
        raise ConfigError(
            f"Image {number} is not an image data URL.",
            hint="Send each image as data:image/png;base64,... (what FileReader.readAsDataURL gives).",
        )
    try:
        part = ImagePart.from_url(url)
    except ValueError as exc:
        raise ConfigError(f"Image {number} cannot be read: {exc}.") from None
    if part.media() not in MEDIA_TYPES:
        raise ConfigError(
            f"Image {number} is {part.media()}; the playground takes PNG, JPEG, WebP or GIF images.",
            hint="Convert it to PNG or JPEG first.",
        )
    size = len(part.read())
    if not size:
        raise ConfigError(f"Image {number} is empty.")
    if size > MAX_IMAGE_BYTES:
        raise too_large(f"Image {number}", size, MAX_IMAGE_BYTES)
    return part


def takes_images(record: ModelRecord) -> bool:
    """Whether the record's backend takes image parts for it (its declared ``accepts``)."""
    from modelatlas.backends.declared import facts

    return record.mode == "chat" and "image" in facts(record).accepts


def cannot_take_images(model_id: str) -> str | None:
    """Why ``model_id`` is not sent the images (unknown, or it takes none); None if it takes them."""
    from modelatlas.studio.playground import unfit_reason

    return unfit_reason(
        model_id, takes_images, lambda _record: f"{model_id} cannot take images, so it was not asked."
    )


def image_model_ids(model_ids: list[str]) -> list[str]:
    """Those of ``model_ids`` that take images (for the page's note on the others). The runnable
    records are asked as they are: resolving a bundled id again can mean joining its file."""
    from modelatlas.catalog.resolve import runnable_records

    known = {r.id: r for r in runnable_records()}
    return [m for m in model_ids if (takes_images(known[m]) if m in known else cannot_take_images(m) is None)]


def prompt_maker(images: list[ImagePart], text: str, system: str | None) -> Callable[[Model], Prompt] | None:
    """What each model is asked when the prompt carries images (None when it carries none).

    A model that takes no images raises here, in its own pane: the others still answer."""
    if not images:
        return None
    user = Message(role="user", content=[*images, TextPart(text=text)])
    messages = [Message.system(system), user] if system else [user]

    def prompt_of(model: Model) -> Prompt:
        if not takes_images(model.record):
            raise InvalidRequestError(
                f"{model.id} cannot take images, so it was not asked.",
                hint="Remove the images to compare it, or pick a model that takes images.",
            )
        return messages

    return prompt_of


def request_status(exc: ModelAtlasError) -> int:
    """The HTTP status of a request the playground or arena refuses before it starts."""
    if isinstance(exc, LookupError):
        return 404
    return 413 if isinstance(exc, ImagesTooLargeError) else 400


def page_facts(choices: list[str]) -> dict:
    """What a page with an image input needs: which choices take images, and the limits."""
    return {
        "takes_images": image_model_ids(choices),
        "max_images": MAX_IMAGES,
        "max_image_bytes": MAX_IMAGE_BYTES,
        "max_image_mb": MAX_IMAGE_MB,
    }


def refuse_text_only(model_ids: list[str]) -> None:
    """Refuse a battle whose chosen model cannot take the prompt's images (before anything runs)."""
    from modelatlas.studio.playground import studio_record

    for model_id in model_ids:
        if not takes_images(studio_record(model_id)):  # an unknown id raises its own error
            raise ConfigError(
                f"{model_id} cannot take images, and this prompt carries some.",
                hint="Leave it at random (only models that take images are drawn), or remove the images.",
            )
