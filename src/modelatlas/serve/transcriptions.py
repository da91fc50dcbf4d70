"""Serving logic for POST /v1/audio/transcriptions: the openai SDK's multipart upload in,
a transcript in the asked ``response_format`` out (serve/transcript_formats.py).

A request goes: its form read and checked (a bad format, a stream, a file too large, empty or
not audio: a 400 or 413 before anything runs) -> admitted against the key like every route
(serve/app.py; the budget reserves the audio's minutes at the model's price when the upload's
header tells its duration) -> the model checked to transcribe (a metered 400) -> transcribed in
the model's queue -> metered with the audio's seconds. ``chunking_strategy`` is accepted and
has no effect: the served models transcribe the whole file.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import Response

from modelatlas.audio_length import wav_seconds
from modelatlas.errors import InvalidRequestError
from modelatlas.serve.errors import RequestTooLargeError
from modelatlas.serve.languages import code_of
from modelatlas.serve.lifetime import metered_whole
from modelatlas.serve.metrics import note_model
from modelatlas.serve.models import check_can
from modelatlas.serve.transcript_formats import (
    FORMATS,
    JSON_TYPE,
    TEXT_TYPES,
    TranscriptionResponse,
    VerboseTranscriptionResponse,
    check_format,
    render,
)

DEFAULT_MAX_AUDIO_MB = 25.0  # OpenAI's limit for an uploaded audio file
ENDPOINT = "audio.transcriptions"
PATH = "/v1/audio/transcriptions"
ANSWER = TranscriptionResponse | VerboseTranscriptionResponse
_TEXT = {"schema": {"type": "string"}}
RESPONSES = {200: {"content": {JSON_TYPE: {}, **{kind.split(";")[0]: _TEXT for kind in TEXT_TYPES.values()}}}}


@dataclass
class TranscriptionJob:
    """A checked transcription request: the audio's bytes and what to do with them."""

    model: str
    audio: bytes
    response_format: str = "json"
    language: str | None = None
    prompt: str | None = None
    temperature: float = 0.0
    granularities: list[str] = field(default_factory=list)
    estimated_seconds: float | None = None  # from the file's header; None when it cannot tell


@dataclass
class TranscriptionForm:
    """The multipart fields as the openai SDK sends them (``temperature`` as text, each
    granularity as a repeated ``timestamp_granularities[]`` field)."""

    model: str
    file: UploadFile
    language: str | None
    prompt: str | None
    response_format: str
    temperature: float
    granularities: list[str]
    stream: bool
    include: list[str]


async def read_form(
    model: Annotated[str, Form(description="A served speech-recognition model, e.g. local/whisper-base")],
    file: Annotated[UploadFile, File(description="The audio: wav, mp3, flac, ogg, webm, m4a...")],
    language: Annotated[str | None, Form(description="ISO-639-1 code such as 'en'; default: detect")] = None,
    prompt: Annotated[str | None, Form(description="Text that precedes the audio: names, spelling")] = None,
    response_format: Annotated[str, Form(json_schema_extra={"enum": list(FORMATS)})] = "json",
    temperature: Annotated[float, Form(ge=0.0, le=1.0)] = 0.0,
    granularities: Annotated[
        list[str] | None, Form(alias="timestamp_granularities[]", description="word, segment or both")
    ] = None,
    stream: Annotated[bool, Form(description="Not supported: a 400 when true")] = False,
    include: Annotated[list[str] | None, Form(alias="include[]", description="Not supported")] = None,
    chunking_strategy: Annotated[str | None, Form(description="Accepted; no effect here")] = None,
) -> TranscriptionForm:
    """FastAPI reads the form into these parameters (a missing file or model, a temperature
    that is not a number in [0, 1]: a 400 naming the field)."""
    granularities, include = granularities or [], include or []
    return TranscriptionForm(
        model, file, language, prompt, response_format, temperature, granularities, stream, include
    )


async def prepare(form: TranscriptionForm, max_audio_mb: float) -> TranscriptionJob:
    """The checked job, or a 400/413 that says what is wrong with the request."""
    check_format(form.response_format, form.granularities)
    if form.stream:
        raise InvalidRequestError(
            "Streaming transcription is not supported by this server.",
            hint="Leave 'stream' out (or send false): the whole transcript comes in one answer.",
            param="stream",
        )
    if form.include:
        raise InvalidRequestError(
            f"include[] {form.include[0]!r} is not supported: the served models give no token "
            "log-probabilities with a transcript.",
            hint="Leave include[] out; verbose_json has each segment's avg_logprob.",
            param="include[]",
        )
    language = code_of(form.language)
    audio = await _read(form.file, max_audio_mb)
    seconds = await asyncio.to_thread(probe, audio)
    return TranscriptionJob(
        model=form.model,
        audio=audio,
        response_format=form.response_format,
        language=language,
        prompt=form.prompt or None,
        temperature=form.temperature,
        granularities=form.granularities,
        estimated_seconds=seconds,
    )


async def answer(request: Request, job: TranscriptionJob, ticket, headers: dict[str, str]) -> Response:
    """Transcribe ``job`` on the served model and close its ticket with the audio's seconds.
    A client that leaves first is metered as cancelled (499), as on the chat routes."""
    state = request.app.state
    note_model(job.model)  # /metrics labels the request with its model, whatever it answers

    def start():
        _check_transcribes(state.pool.record(job.model))
        return _transcribe(state.pool, job)

    transcript = await metered_whole(request, ticket, start)
    if isinstance(transcript, Response):
        return transcript
    usage = transcript.usage
    seconds = usage.audio_seconds or transcript.duration_s
    ticket.close(200, usage.input_tokens, usage.output_tokens, audio_seconds=seconds)
    response = render(transcript, job.response_format, job.granularities)
    response.headers.update(headers)
    return response


async def _transcribe(pool, job: TranscriptionJob):
    async with pool.slot(job.model):
        model = await pool.get(job.model)
        return await model.transcribe(
            job.audio,
            language=job.language,
            prompt=job.prompt,
            temperature=job.temperature,
            word_timestamps="word" in job.granularities,
        )


def _check_transcribes(record) -> None:
    check_can(record, "transcription", "transcribe audio", "a speech-recognition")


async def _read(file: UploadFile, max_audio_mb: float) -> bytes:
    limit = int(max_audio_mb * 2**20)
    audio = await file.read(limit + 1)
    if len(audio) > limit:
        raise RequestTooLargeError(
            f"The audio file is over this server's limit of {max_audio_mb:g} MB.",
            hint="Send a shorter recording or a compressed one (mp3, ogg, flac), or start the "
            "server with a larger --max-audio-mb.",
        )
    if not audio:
        raise InvalidRequestError(
            f"The audio file {file.filename or ''!r} is empty.",
            hint="Send the recording's bytes as the multipart field 'file'.",
            param="file",
        )
    return audio


def probe(audio: bytes) -> float | None:
    """The audio's duration in seconds, read from its header (None when it cannot tell), or a
    400 when the bytes are not audio: found here, before the model is loaded or queued for."""
    seconds = wav_seconds(audio)
    if seconds is not None:
        return seconds
    try:
        import av
    except ImportError:  # no decoder here (a server of hosted models only): the model decides
        return None
    try:
        with av.open(io.BytesIO(audio), mode="r") as container:
            streams = container.streams.audio
            if not streams:
                raise _not_audio("it holds no audio stream")
            duration = container.duration
    except av.error.FFmpegError as exc:
        raise _not_audio(str(exc.strerror or exc).rstrip(".").lower()) from None
    return duration / 1_000_000 if duration else None  # av's time base: microseconds


def _not_audio(why: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"The file is not audio this server can decode ({why}).",
        hint="Send a recording in a common format: wav, mp3, flac, ogg, webm or m4a.",
        param="file",
    )
