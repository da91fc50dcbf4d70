"""`modelatlas run MODEL "What is in this picture?" --image photo.jpg`: pictures with the prompt.

Each ``--image`` (repeatable) is a file on this machine, read and checked to be a picture
(by its first bytes) before any call is made, or an http(s) URL,
which is passed on as the URL to a hosted model and never fetched here: a local model would need
its bytes, so a URL for one is refused. The pictures go before the text in the user's message.
A model that takes no images is refused with exit 2 before anything is sent.
"""

from __future__ import annotations

from pathlib import Path

from modelatlas.errors import InvalidRequestError
from modelatlas.parts import ImagePart, TextPart
from modelatlas.types import Message, Prompt

URL_PREFIXES = ("http://", "https://")
KINDS = {
    "chat": "a chat model",
    "completion": "a base (completion) model",
    "embedding": "an embedding model",
    "transcription": "a speech-recognition model",
    "image_generation": "an image-generation model",
}


def check_takes_images(llm) -> None:
    """Refuse a model that cannot be given a picture, naming it and where to find one that can."""
    from modelatlas.evals.image_rows import sees

    if not sees(llm.record):
        from modelatlas.backends.declared import facts

        takes = " and ".join(sorted(facts(llm.record).accepts)) or "text"
        kind = KINDS.get(llm.record.mode or "chat", f"a {llm.record.mode} model")
        raise InvalidRequestError(
            f"{llm.id} takes no images ({kind} that takes {takes}): --image cannot be sent to it.",
            hint="Pick a model that takes images: `modelatlas catalog search --modality image`.",
        )


def image_part(given: str, hosted: bool) -> ImagePart:
    """The picture ``given`` names: a URL (hosted models only) or a readable image file."""
    from modelatlas.evals.image_rows import image_type

    if given.startswith(URL_PREFIXES):
        if not hosted:
            raise InvalidRequestError(
                f"--image {given}: a URL is passed on only to hosted models; a local model needs the bytes.",
                hint="Download the picture and give its path (nothing is fetched here).",
            )
        return ImagePart(url=given)
    path = Path(given).expanduser()
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except IsADirectoryError:
        raise InvalidRequestError(f"--image {given} is a folder, not an image file.") from None
    except OSError as exc:
        raise InvalidRequestError(
            f"--image {given}: cannot read the file ({exc.strerror or exc}).", hint="Check the path."
        ) from None
    media_type = image_type(head)
    if media_type is None:
        raise InvalidRequestError(
            f"--image {given} is not an image (not PNG, JPEG, GIF, WebP, BMP or TIFF).",
            hint="Give a picture file, or convert it to PNG or JPEG first.",
        )
    return ImagePart(path=path.resolve(), media_type=media_type)


def image_prompt(llm, images: list[str], text: str, system: str | None) -> Prompt:
    """The messages that send each ``--image`` and then ``text`` to ``llm``: refused when the
    model takes no images, or when a picture cannot be read (before any call is made)."""
    from modelatlas.backends.declared import facts

    check_takes_images(llm)
    hosted = facts(llm.record).hosted
    content: list = [image_part(given, hosted) for given in images]
    content += [TextPart(text=text)] if text.strip() else []
    return [*([Message.system(system)] if system else []), Message.user(content)]
