"""A transcript in the ``response_format`` a client asked of /v1/audio/transcriptions.

The shapes are OpenAI's: ``json`` is the text and the audio's duration as usage; ``verbose_json``
adds the task, the language's name, the duration, the timed segments and (with
``timestamp_granularities[]=word``) the words; ``text``, ``srt`` and ``vtt`` are text bodies.

One field differs in meaning: Whisper's ``seek`` is the offset, in 10 ms frames, of the
30-second window a segment was decoded in, which the transcription contract does not carry;
here it is the segment's own start in 10 ms frames (the same for a segment that opens a window).
"""

from __future__ import annotations

from typing import Literal

from fastapi.responses import Response
from pydantic import BaseModel

from modelatlas.errors import InvalidRequestError
from modelatlas.serve.languages import name_of
from modelatlas.transcripts import Segment, Transcript

FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
GRANULARITIES = ("word", "segment")
TEXT_TYPES = {
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}
JSON_TYPE = "application/json"


class DurationUsage(BaseModel):
    """What the request is billed by: seconds of audio (OpenAI's ``type: duration`` usage)."""

    type: Literal["duration"] = "duration"
    seconds: float


class TranscriptionResponse(BaseModel):
    text: str
    usage: DurationUsage


class TranscriptionSegment(BaseModel):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float | None
    compression_ratio: float | None
    no_speech_prob: float | None


class TranscriptionWord(BaseModel):
    word: str
    start: float
    end: float


class VerboseTranscriptionResponse(BaseModel):
    task: Literal["transcribe"] = "transcribe"
    language: str | None
    duration: float
    text: str
    segments: list[TranscriptionSegment] | None = None
    words: list[TranscriptionWord] | None = None
    usage: DurationUsage


def check_format(response_format: str, granularities: list[str]) -> None:
    """A 400 naming the parameter for a format or a granularity this server does not make."""
    if response_format == "diarized_json":
        raise InvalidRequestError(
            "response_format 'diarized_json' is not supported: it needs a model that tells speakers "
            "apart, and none served here does.",
            hint=f"Use one of {', '.join(FORMATS)}.",
            param="response_format",
        )
    if response_format not in FORMATS:
        raise InvalidRequestError(
            f"Invalid value for 'response_format': {response_format!r} is not a transcription format.",
            hint=f"Use one of {', '.join(FORMATS)}.",
            param="response_format",
        )
    unknown = [g for g in granularities if g not in GRANULARITIES]
    if unknown:
        raise InvalidRequestError(
            f"Invalid value for 'timestamp_granularities[]': {unknown[0]!r}.",
            hint="Use word, segment or both.",
            param="timestamp_granularities[]",
        )
    if granularities and response_format != "verbose_json":
        raise InvalidRequestError(
            "timestamp_granularities[] needs response_format 'verbose_json' (the only format "
            "that carries timestamps per word or segment).",
            hint="Send response_format=verbose_json, or leave timestamp_granularities[] out.",
            param="timestamp_granularities[]",
        )


def render(transcript: Transcript, response_format: str, granularities: list[str]) -> Response:
    """The response body and content type for ``response_format`` (checked already)."""
    if response_format == "json":
        usage = _usage(transcript)
        body = TranscriptionResponse(text=transcript.text, usage=usage).model_dump_json()
        return Response(body, media_type=JSON_TYPE)
    if response_format == "verbose_json":
        return Response(verbose(transcript, granularities).model_dump_json(), media_type=JSON_TYPE)
    text = {"text": _plain, "srt": srt, "vtt": vtt}[response_format](transcript)
    return Response(text.encode("utf-8"), headers={"content-type": TEXT_TYPES[response_format]})


def verbose(transcript: Transcript, granularities: list[str]) -> VerboseTranscriptionResponse:
    """OpenAI's verbose_json: segments unless only words were asked for, words when asked for."""
    segments = words = None
    if not granularities or "segment" in granularities:
        segments = [_segment(s) for s in transcript.segments]
    if "word" in granularities:
        words = [TranscriptionWord(word=w.word.strip(), start=w.start, end=w.end) for w in transcript.words]
    return VerboseTranscriptionResponse(
        language=name_of(transcript.language),
        duration=transcript.duration_s,
        text=transcript.text,
        segments=segments,
        words=words,
        usage=_usage(transcript),
    )


def srt(transcript: Transcript) -> str:
    """SubRip: numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, a blank line after each."""
    cues = [
        f"{n}\n{timestamp(s.start, ',')} --> {timestamp(s.end, ',')}\n{s.text.strip()}\n\n"
        for n, s in enumerate(_cued(transcript), start=1)
    ]
    return "".join(cues)


def vtt(transcript: Transcript) -> str:
    """WebVTT: the ``WEBVTT`` header, then ``HH:MM:SS.mmm --> HH:MM:SS.mmm`` cues."""
    cues = [
        f"{timestamp(s.start, '.')} --> {timestamp(s.end, '.')}\n{s.text.strip()}\n\n"
        for s in _cued(transcript)
    ]
    return "WEBVTT\n\n" + "".join(cues)


def timestamp(seconds: float, separator: str) -> str:
    """``HH:MM:SS<separator>mmm``, rounded to the millisecond."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cued(transcript: Transcript) -> list[Segment]:
    """The segments to cue; a transcript without segments (some hosted models give none) is
    one cue over the whole audio."""
    if transcript.segments:
        return [s for s in transcript.segments if s.text.strip()]
    if not transcript.text.strip():
        return []
    return [Segment(id=0, start=0.0, end=transcript.duration_s, text=transcript.text)]


def _plain(transcript: Transcript) -> str:
    return transcript.text + "\n" if transcript.text else ""


def _segment(s: Segment) -> TranscriptionSegment:
    return TranscriptionSegment(
        id=s.id,
        seek=round(s.start * 100),
        start=s.start,
        end=s.end,
        text=s.text,
        tokens=s.tokens,
        temperature=s.temperature,
        avg_logprob=s.avg_logprob,
        compression_ratio=s.compression_ratio,
        no_speech_prob=s.no_speech_prob,
    )


def _usage(transcript: Transcript) -> DurationUsage:
    seconds = transcript.usage.audio_seconds or transcript.duration_s
    return DurationUsage(seconds=round(seconds, 3))
