"""Validating and normalising what a call is given, before any cache look-up or backend call.

:class:`modelatlas.backends.model.Model` turns its arguments (audio as a path, bytes or part;
settings as a params object plus keyword overrides) into checked values here, so a bad option
fails with a clear :class:`~modelatlas.errors.InvalidRequestError` before anything is cached,
logged or sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from modelatlas.errors import InvalidRequestError, suggest
from modelatlas.images import ImageParams
from modelatlas.parts import AudioPart
from modelatlas.transcripts import TranscribeParams
from modelatlas.types import GenerationParams


def as_audio(audio: AudioPart | str | Path | bytes) -> AudioPart:
    """An audio part from a path, raw bytes (their format sniffed from the header) or a part."""
    if isinstance(audio, AudioPart):
        return audio
    if isinstance(audio, bytes):
        return AudioPart(data=audio, format=_sniff_format(audio))
    return AudioPart(path=Path(audio))


def _sniff_format(data: bytes) -> str:
    """The container of audio bytes from their first bytes (wav when unknown: the decoder
    reads the real header anyway)."""
    heads = {b"RIFF": "wav", b"fLaC": "flac", b"OggS": "ogg", b"ID3": "mp3", b"\x1aE\xdf\xa3": "webm"}
    for head, name in heads.items():
        if data.startswith(head):
            return name
    if data[4:8] == b"ftyp":
        return "m4a"
    if data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "mp3"
    return "wav"


def _transcribe_params(params: TranscribeParams | None, overrides: dict[str, Any]) -> TranscribeParams:
    params = params or TranscribeParams()
    if not overrides:
        return params
    try:
        return TranscribeParams.model_validate({**params.model_dump(), **overrides})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidRequestError(
            f"Bad transcription options: {problems}.",
            hint=f"Allowed options: {', '.join(TranscribeParams.model_fields)}.",
        ) from None


def _image_params(params: ImageParams | None, overrides: dict[str, Any]) -> ImageParams:
    params = params or ImageParams()
    if not overrides:
        return params
    try:
        return ImageParams.model_validate({**params.model_dump(), **overrides})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidRequestError(
            f"Bad image options: {problems}.",
            hint=f"Allowed options: {', '.join(ImageParams.model_fields)}.",
        ) from None


def _params(params: GenerationParams | None, overrides: dict[str, Any]) -> GenerationParams:
    """The call's settings, validated like construction-time options.

    ``model_copy(update=...)`` skips validation, so ``max_tokns=2`` or ``temperature=-5`` used to
    reach the backend unnoticed; here they fail before any call, cache look-up or log entry.
    """
    params = params or GenerationParams()
    if not overrides:
        return params
    try:
        return GenerationParams.model_validate({**params.model_dump(), **overrides})
    except ValidationError as exc:
        raise _bad_params(exc) from None


def _bad_params(exc: ValidationError) -> InvalidRequestError:
    known = list(GenerationParams.model_fields)
    problems: list[str] = []
    close: list[str] = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]) or "params"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown option {name!r}")
            close += [c for c in suggest(name, known) if c not in close]
        else:
            problems.append(f"{name}: {err['msg']} (got {err.get('input')!r})")
    hint = f"Did you mean {' or '.join(map(repr, close))}? " if close else ""
    return InvalidRequestError(
        f"Bad generation options: {'; '.join(problems)}.",
        hint=f"{hint}Allowed options: {', '.join(known)}.",
    )
