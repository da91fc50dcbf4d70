"""Audio in datasets: an ``audio`` column of file paths, and Hugging Face ``audiofolder`` folders.

A row's audio is a path to a sound file, relative to the dataset file's folder (or absolute);
it becomes an :class:`~modelatlas.parts.AudioPart` on the item, checked to exist when the dataset
loads, so that a missing file is reported with its line rather than at the first call. The
dataset's hash reads each file's bytes: a WAV re-recorded under the same name is another dataset.

An ``audiofolder`` (the Hugging Face layout) is a folder of sound files with a ``metadata.csv``
or ``metadata.jsonl`` whose ``file_name`` column names each file; the other columns are the
row's fields. Only the metadata is read here: nothing decodes audio (no torchcodec, soundfile
or ``datasets`` is needed), the speech model reads the file itself.

A speech row's reference is its ``reference`` field (or the one ``Fields`` names), else the
first of :data:`REFERENCE_NAMES` the row has: audiofolders and speech corpora call it
``transcription``, ``text`` or ``sentence``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from modelatlas.errors import DatasetError
from modelatlas.parts import AudioPart

__all__ = ["REFERENCE_NAMES", "audio_part", "audiofolder_metadata", "audiofolder_rows", "speech_reference"]

REFERENCE_NAMES = ("transcription", "transcript", "text", "sentence", "normalized_text")
METADATA_NAMES = ("metadata.csv", "metadata.jsonl")
FILE_NAME = "file_name"  # the audiofolder column that names each file
SPLITS = ("test", "validation", "train")  # a split's subfolder, in the order one is picked

Rows = Iterator[tuple[int, dict[str, Any]]]


def audiofolder_metadata(folder: Path) -> Path | None:
    """The metadata file of an audiofolder at ``folder`` (or in its test, validation or train
    split), or None when ``folder`` is no audiofolder."""
    for where in (folder, *(folder / split for split in SPLITS)):
        for name in METADATA_NAMES:
            if (where / name).is_file():
                return where / name
    return None


def audiofolder_rows(metadata: Path, read: Callable[[Path], Rows], audio_field: str) -> Rows:
    """The metadata's rows (read by ``read``, the CSV or JSONL reader), each ``file_name`` as
    the row's audio field."""
    for line, row in read(metadata):
        if row.get(FILE_NAME) in (None, ""):
            raise DatasetError(
                f"{metadata}:{line}: the row has no {FILE_NAME!r}, the audio or image file it describes.",
                hint="An audiofolder's (or imagefolder's) metadata names each file "
                f"(relative to {metadata.parent}) in a {FILE_NAME} column.",
            )
        rest = {k: v for k, v in row.items() if k != FILE_NAME}
        yield line, {**rest, audio_field: row[FILE_NAME]}


def speech_reference(row: dict[str, Any], reference_field: str) -> str:
    """The field holding a speech row's reference: the named one when the row has it, else the
    first of REFERENCE_NAMES it has (else the named one, which is then missing)."""
    if row.get(reference_field) not in (None, "", []):
        return reference_field
    return next((name for name in REFERENCE_NAMES if row.get(name) not in (None, "")), reference_field)


def audio_part(value: Any, field: str, where: str, folder: Path) -> AudioPart:
    """The row's audio as a part: a path (relative to ``folder``), or a Hugging Face audio
    value ``{"path": ..., "bytes": ...}`` as ``datasets`` keeps it undecoded."""
    if isinstance(value, dict) and isinstance(value.get("bytes"), bytes):
        name = str(value.get("path") or "")
        return AudioPart(data=value["bytes"], format=Path(name).suffix.lstrip(".").lower() or "wav")
    if isinstance(value, dict) and isinstance(value.get("path"), str):
        value = value["path"]
    if not isinstance(value, str) or not value.strip():
        raise DatasetError(
            f"{where}: field {field!r} must be the path of an audio file, got {type(value).__name__}.",
            hint='For example: {"audio": "clips/001.wav", "reference": "what is said"}',
        )
    path = Path(value).expanduser()
    path = path if path.is_absolute() else folder / path
    if not path.is_file():
        raise DatasetError(
            f"{where}: field {field!r} names the file {path}, which does not exist.",
            hint="A relative path is read from the dataset's folder.",
        )
    return AudioPart(path=path)
