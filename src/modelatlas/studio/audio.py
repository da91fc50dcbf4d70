"""The playground's audio mode: one recording or audio file transcribed by up to four speech models.

POST /api/playground/transcribe takes JSON, like the rest of the studio's API:
``{"models": [...], "audio": BASE64, "filename": "talk.wav", "language": "en" | null}``
(``audio`` may also be a ``data:`` URL, which is what a browser's FileReader gives). It answers
``{"audio": {"bytes": n}, "results": [...]}`` with one result per model, in the order asked:
``{"index", "model", "text", "language", "duration_s", "latency_s", "real_time_factor",
"cost_usd", "cached"}``, or ``{"index", "model", "error"}`` for a model that cannot take audio
or failed, so the others still answer. A request the studio cannot use at all (no audio, no
model, more than four, too large) is one ``{"error": ...}`` with status 400 or 413.

Base64 in JSON rather than a multipart upload: the studio has no multipart parser (FastAPI
needs python-multipart for one), and a third more bytes on the loopback costs nothing next to
the seconds a transcription takes. The body is read in pieces and refused as soon as it passes
the limit, so an oversized upload is never held in memory whole.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import ConfigError, InvalidRequestError, ModelAtlasError
from modelatlas.studio.playground import (
    checked_model_ids,
    error_message,
    get_model,
    page_picks,
    problem,
    unfit_reason,
)

MAX_AUDIO_BYTES = 25 * 1024 * 1024  # the audio itself (the limit hosted speech APIs set too)
MAX_AUDIO_MB = MAX_AUDIO_BYTES // (1024 * 1024)
# The JSON body: the audio as base64 (4 characters per 3 bytes) and a little room for the rest.
MAX_BODY_BYTES = 4 * -(-MAX_AUDIO_BYTES // 3) + 64 * 1024
EXAMPLE_MODEL = "local/whisper-base"

router = APIRouter()


class AudioTooLargeError(InvalidRequestError):
    """An upload over the playground's limit (HTTP 413)."""

    http_status = 413


class TranscribeRequest(BaseModel):
    """What the audio mode sends: the models, the audio as base64 and the optional language."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(default_factory=list)
    audio: str = ""
    filename: str | None = Field(None, max_length=300)
    language: str | None = Field(None, max_length=16)


def too_large(size: int) -> AudioTooLargeError:
    return AudioTooLargeError(
        f"The audio is {size / 1024 / 1024:.1f} MB; the playground takes at most {MAX_AUDIO_MB} MB.",
        hint="Use a shorter clip, or a compressed one (mp3, ogg, or 16 kHz mono wav).",
    )


async def read_body(request: Request) -> bytes:
    """The request body, refused (413) as soon as it passes MAX_BODY_BYTES."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large(int(declared) * 3 // 4)
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > MAX_BODY_BYTES:
            raise too_large(len(body) * 3 // 4)
    return bytes(body)


def parse_request(body: bytes) -> tuple[TranscribeRequest, bytes]:
    """The request and its decoded audio, checked (a ModelAtlasError says what is wrong)."""
    try:
        req = TranscribeRequest.model_validate(json.loads(body or b"null"))
    except (ValueError, ValidationError) as exc:
        problems = error_message(exc)
        raise ConfigError(f"The request is not what the audio playground takes: {problems}") from exc
    ids = checked_model_ids(req.models, "Choose a speech model in one of the model lists.")
    audio = decode_audio(req.audio)
    return req.model_copy(update={"models": ids, "language": (req.language or "").strip() or None}), audio


def decode_audio(text: str) -> bytes:
    """The bytes of base64 audio (a ``data:audio/...;base64,`` prefix is allowed)."""
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        audio = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            "The audio is not valid base64.", hint="Send the file's bytes base64-encoded in 'audio'."
        ) from None
    if not audio:
        raise ConfigError("Choose or record some audio first.", hint="Upload a file or press Record.")
    if len(audio) > MAX_AUDIO_BYTES:
        raise too_large(len(audio))
    return audio


def can_transcribe(record) -> bool:
    """Whether the record's backend declares speech to text for it."""
    from modelatlas.backends.declared import facts

    return facts(record).can("transcription")


def cannot_take_audio(model_id: str) -> str | None:
    """Why ``model_id`` cannot transcribe here (unknown, or not a speech model); None if it can."""

    def why(record: ModelRecord) -> str:
        what = f"a {record.mode} model" if record.mode else "not a speech model"
        return (
            f"{model_id} cannot take audio: it is {what}. "
            f"Pick a speech-recognition model, for example {EXAMPLE_MODEL}."
        )

    return unfit_reason(model_id, can_transcribe, why)


def transcription_model_ids() -> list[str]:
    """Ids of the runnable models that turn speech into text."""
    from modelatlas.catalog.resolve import runnable_records

    return [r.id for r in runnable_records() if can_transcribe(r)]


async def transcribe_one(index: int, model_id: str, audio: bytes, language: str | None) -> dict[str, Any]:
    """One model's transcript of ``audio`` as the page shows it, or its error."""
    reason = cannot_take_audio(model_id)
    if reason is not None:
        return {"index": index, "model": model_id, "error": reason}
    try:
        model = await get_model(model_id)
        await model.load()  # loaded first, so its latency is the transcription's alone
        overrides = {"language": language} if language else {}
        transcript = await model.transcribe(audio, **overrides)
    except Exception as exc:  # shown in this model's pane; the others still answer
        return {"index": index, "model": model_id, "error": error_message(exc)}
    return {
        "index": index,
        "model": model_id,
        "text": transcript.text.strip(),
        "language": transcript.language,
        "duration_s": transcript.duration_s,
        "latency_s": transcript.timing.latency_s,
        "real_time_factor": transcript.real_time_factor,
        "cost_usd": transcript.usage.cost_usd,
        "cached": transcript.cached,
    }


@router.post("/api/playground/transcribe")
async def playground_transcribe(request: Request):
    try:
        req, audio = parse_request(await read_body(request))
    except ModelAtlasError as exc:
        return problem(exc, exc.http_status)
    results = await asyncio.gather(
        *(transcribe_one(i, m, audio, req.language) for i, m in enumerate(req.models))
    )
    return {"audio": {"bytes": len(audio), "filename": req.filename}, "results": list(results)}


def wants_audio(mode: str, asked: list[str]) -> bool:
    """Whether /playground shows the audio mode: asked for, or every model asked for is a speech model."""
    if mode in ("audio", "text"):
        return mode == "audio"
    return bool(asked) and all(cannot_take_audio(m) is None for m in asked)


def audio_page(request: Request, asked: list[str]):
    """The playground's audio mode, with ``asked`` picked (a model that cannot take audio is said)."""
    from modelatlas.studio.web import render

    problems = [p for p in map(cannot_take_audio, asked) if p]
    choices, picked = page_picks(asked, transcription_model_ids(), problems, default=1)
    return render(
        request,
        "playground_audio.html",
        mode="audio",
        choices=choices,
        picked=picked,
        problems=problems,
        max_bytes=MAX_AUDIO_BYTES,
        max_mb=MAX_AUDIO_MB,
        example_model=EXAMPLE_MODEL,
    )
