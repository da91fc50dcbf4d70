"""Images in datasets: an ``image`` column, Hugging Face ``imagefolder`` folders, and their place
in the prompt.

A row's ``image`` is the path of a picture relative to the dataset file's folder (or absolute),
a list of such paths (several pictures), or a Hugging Face image value ``{"bytes", "path"}`` as
``datasets`` keeps it undecoded. Each becomes an :class:`~modelatlas.parts.ImagePart` on the
item (``Item.images``), checked when the dataset loads: a missing file, or a file whose first
bytes are no PNG, JPEG, GIF, WebP, BMP or TIFF, is reported with the row's file and line rather
than by the provider at the first call. The part's media type is the sniffed one, not the
suffix's. Nothing here decodes pixels (no Pillow needed); the model's processor does that.

The dataset's hash covers the pictures' bytes (a part's fingerprint is the sha256 of its
bytes): a photo retouched under the same name is another dataset. A URL is refused in a dataset
for that reason: its bytes are not known here, and nothing is fetched behind the user's back.

An ``imagefolder`` is laid out like an ``audiofolder`` (a folder with a ``metadata.csv`` or
``metadata.jsonl`` whose ``file_name`` names each file): a row whose file is a picture (by its
suffix) has it as its image rather than its audio. Without metadata, a folder whose subfolders
hold the pictures (``cat/1.png``, ``dog/2.png``) is one too: each picture's folder is its label,
the item's reference (as Hugging Face infers ``label``), and its path is its id.

In the prompt, a Jinja2 template places the pictures with ``{{ image }}`` (all of the item's,
in order) or ``{{ images[0] }}`` (one); the text around them becomes text parts of the user's
message. Without a placeholder (or without a template) the pictures go before the text; a
picture the template does not place is put before the text too, so none is dropped silently.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelatlas.errors import ConfigError, DatasetError, ModelAtlasError
from modelatlas.parts import ImagePart, Part, TextPart

if TYPE_CHECKING:
    from modelatlas.evals.plan import Plan
    from modelatlas.items import Item
    from modelatlas.records import ModelRecord

__all__ = [
    "check_images",
    "image_marks",
    "image_parts",
    "image_type",
    "imagefolder_rows",
    "label_folders",
    "labelled_rows",
    "placed",
    "prompt_images",
    "report_src",
    "served_bytes",
    "still_there",
    "undecoded_images",
]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
HINT = (
    'For example: {"image": "pictures/cat.png", "input": "What is this?"} (relative to the dataset\'s folder)'
)


def image_type(head: bytes) -> str | None:
    """The media type a picture's first bytes announce, or None when they are no known image."""
    signatures = (
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"BM", "image/bmp"),
        (b"II*\x00", "image/tiff"),
        (b"MM\x00*", "image/tiff"),
    )
    for magic, media_type in signatures:
        if head.startswith(magic):
            return media_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_parts(value: Any, field: str, where: str, folder: Path) -> list[ImagePart]:
    """The row's pictures: one path, a list of them, or Hugging Face image values."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise DatasetError(f"{where}: field {field!r} is an empty list.", hint=HINT)
    return [
        _one(v, field if len(values) == 1 else f"{field}[{i}]", where, folder) for i, v in enumerate(values)
    ]


def _one(value: Any, field: str, where: str, folder: Path) -> ImagePart:
    if isinstance(value, dict) and isinstance(value.get("bytes"), bytes):
        return ImagePart(
            data=value["bytes"], media_type=_checked(value["bytes"][:16], field, where, "its bytes")
        )
    if isinstance(value, dict) and isinstance(value.get("path"), str):
        value = value["path"]
    if not isinstance(value, str) or not value.strip():
        raise DatasetError(
            f"{where}: field {field!r} must be the path of an image file, got {type(value).__name__}.",
            hint=HINT,
        )
    if re.match(r"^(https?|data):", value.strip()):
        raise DatasetError(
            f"{where}: field {field!r} is a URL ({value[:60]}); a dataset's images are files.",
            hint="Download the picture next to the dataset and give its path: the dataset's hash "
            "covers every picture's bytes, and nothing is fetched during a run.",
        )
    return _file_part(value, field, where, folder)


def _file_part(value: str, field: str, where: str, folder: Path) -> ImagePart:
    """A picture by its path (relative to ``folder``), read as far as its signature."""
    path = Path(value).expanduser()
    path = (path if path.is_absolute() else folder / path).resolve()
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except IsADirectoryError:
        raise DatasetError(f"{where}: field {field!r} names {path}, which is a folder.", hint=HINT) from None
    except FileNotFoundError:
        raise DatasetError(
            f"{where}: field {field!r} names the file {path}, which does not exist.",
            hint="A relative path is read from the dataset's folder.",
        ) from None
    except OSError as exc:
        raise DatasetError(f"{where}: field {field!r}: cannot read {path}: {exc.strerror}.") from None
    return ImagePart(path=path, media_type=_checked(head, field, where, str(path)))


def _checked(head: bytes, field: str, where: str, what: str) -> str:
    media_type = image_type(head)
    if media_type is None:
        raise DatasetError(
            f"{where}: field {field!r}: {what} is not an image (not PNG, JPEG, GIF, WebP, BMP or TIFF).",
            hint="Point the field at a picture file; convert other formats to PNG or JPEG first.",
        )
    return media_type


def undecoded_images(feature: Any) -> Any:
    """A ``datasets`` feature of pictures (an Image, or a list of them) as the same feature kept
    undecoded ({"bytes", "path"}: no PIL image is made), or None for any other feature."""
    import datasets

    if isinstance(feature, datasets.Image):
        return datasets.Image(decode=False)
    if isinstance(feature, list) and len(feature) == 1 and isinstance(feature[0], datasets.Image):
        return [datasets.Image(decode=False)]
    inner = getattr(feature, "feature", None)  # datasets.List / Sequence of pictures
    if isinstance(inner, datasets.Image) and not isinstance(feature, dict):
        return type(feature)(datasets.Image(decode=False))
    return None


def imagefolder_rows(rows, image_field: str, audio_field: str):
    """An audiofolder's rows (``file_name`` already moved to ``audio_field``) with each picture
    moved to ``image_field``: the same layout is an imagefolder when its files are images."""
    for line, row in rows:
        name = row.get(audio_field)
        if isinstance(name, str) and Path(name).suffix.lower() in IMAGE_SUFFIXES:
            row = {k: v for k, v in row.items() if k != audio_field} | {image_field: name}
        yield line, row


def label_folders(folder: Path) -> Path | None:
    """The root of an imagefolder without metadata, whose subfolders name each picture's label
    (``cats/1.png``; at the top or in a test, validation or train split), or None."""
    from modelatlas.evals.audio_rows import SPLITS

    for root in (*(folder / split for split in SPLITS), folder):
        pictures = [p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        if pictures and all(len(p.relative_to(root).parts) == 2 for p in pictures):
            return root
    return None


def labelled_rows(root: Path, image_field: str, reference_field: str):
    """One row a picture of a label-folder imagefolder: its path (the id too) and, as the reference,
    its folder's name, as Hugging Face's imagefolder infers its ``label``."""
    pictures = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    for line, picture in enumerate(pictures, start=1):
        name = picture.relative_to(root).as_posix()
        yield line, {"id": name, image_field: str(picture.resolve()), reference_field: picture.parent.name}


# -- placing the pictures in the user's message ----------------------------------------------

MARK = "\x00image:{}\x00"  # NUL never occurs in a dataset's text (the reader refuses it)
MARKS = re.compile("\x00image:(\\d+)\x00")


def image_marks(item: Item, marks: bool) -> dict[str, Any]:
    """The template's ``image`` and ``images`` variables: markers that :func:`placed` turns into
    the pictures (``marks``), or nothing where only text is wanted (retrieval, completion)."""
    found = [MARK.format(i) if marks else "" for i in range(len(item.images))]
    return {"image": "".join(found), "images": found}


def placed(text: str, images: list[ImagePart]) -> list[Part]:
    """The user's message parts: the text with each marker replaced by its picture, and the
    pictures no marker places before it (all of them when the text holds no marker)."""
    pieces = MARKS.split(text)
    used = {int(i) for i in pieces[1::2]}
    parts: list[Part] = [image for i, image in enumerate(images) if i not in used]
    for i, piece in enumerate(pieces):
        if i % 2:
            parts.append(images[int(piece)])
        elif piece.strip():
            parts.append(TextPart(text=piece))
    return parts


# -- the plan: pictures only for models that take them -----------------------------------------


def has_images(item: Item) -> bool:
    return bool(item.images) or any("image" in m.kinds for m in item.messages or [])


def check_images(plan: Plan) -> None:
    """Refuse a plan with pictures when a selected model cannot take them, naming every such model
    before any call (rather than failing each item with the provider's error)."""
    if not any(has_images(item) for item in plan.dataset.items):
        return
    from modelatlas.evals.speech_plan import _listed, _record

    retrieving = [s.name for s in plan.strategies if hasattr(s, "kb")]
    if retrieving:  # its prompt is the question's text with the passages: the pictures would be lost
        raise ConfigError(
            f"{plan.dataset.path} holds images, and {_listed(retrieving)} sends text only.",
            hint="Use zero-shot or few-shot strategies with images (retrieval searches by the text alone).",
        )

    records = {m: _record(m) for m in plan.models}
    blind = [m for m, record in records.items() if record is not None and not sees(record)]
    if blind:
        raise ConfigError(
            f"{plan.dataset.path} holds images, and {_listed(blind)} cannot take images.",
            hint="Evaluate models that take images (`modelatlas catalog search --modality image`); to "
            "leave the pictures out, point --image-field at a column the rows do not have.",
        )


def sees(record: ModelRecord) -> bool:
    """Whether a model can be given a picture: a chat model whose backend and record take images."""
    from modelatlas.backends.declared import facts

    return "image" in facts(record).accepts and record.mode not in ("completion", "embedding")


# -- what a run keeps: the pictures of the prompt it sent ----------------------------------------
# A stored item's output holds the prompt exactly as sent, so its pictures survive with the run:
# a file by its absolute path and media type (the dataset's hash holds its bytes' sha256), bytes
# (a datasets Image feature's) as base64. Run pages and reports show them from there.

INLINE_BYTES = 64 * 1024  # a standalone report puts a picture held as bytes in the page up to this size


def prompt_images(prompt: Any) -> list[ImagePart]:
    """The pictures of a stored prompt's user messages, in order (none for a text prompt)."""
    if not isinstance(prompt, list):
        return []
    return [p for m in prompt if m.role == "user" for p in m.parts if isinstance(p, ImagePart)]


def still_there(image: ImagePart) -> bool:
    """Whether a stored picture can still be shown: its bytes are kept, or its file exists."""
    return image.data is not None or (image.path is not None and image.path.is_file())


def report_src(image: ImagePart) -> str | None:
    """Where a standalone report finds a picture: its file as a file:// URL (the report is read on
    the machine the dataset is on; nothing is copied), small bytes inline, else None (a file gone)."""
    from modelatlas.parts import data_url

    if image.path is not None and image.path.is_file():
        return image.path.resolve().as_uri()
    if image.data is not None and len(image.data) <= INLINE_BYTES:
        return data_url(image.media(), image.data)
    return None


def served_bytes(image: ImagePart) -> tuple[bytes, str] | None:
    """A stored picture's bytes and media type for the studio, or None when it is a URL, its file
    is gone, or the file is no longer a picture (nothing but images is ever served)."""
    if image.url is not None:
        return None
    try:
        data = image.read()
    except ModelAtlasError:
        return None
    media_type = image_type(data[:16])
    return None if media_type is None else (data, media_type)
