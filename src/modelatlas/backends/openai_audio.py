"""Speech to text through the OpenAI SDK's ``audio.transcriptions``: the request and the answer.

Two shapes of answer exist. ``verbose_json`` (whisper-1, and the Whisper models of Groq, vLLM,
modelatlas serve...) gives the language, the duration and timed segments (and words when asked);
OpenAI's gpt-4o transcribe models answer only ``json`` (the text) or ``text``. With ``json`` the
duration, which per-minute pricing needs, is read from the audio here: a WAV's header with the
standard library, other containers with PyAV when the speech extra is installed.

verbose_json names the language in English words ("english"); a Transcript holds the ISO-639-1
code, so the name is mapped back (:mod:`modelatlas.speech_languages`).
"""

from __future__ import annotations

import re
from typing import Any

from modelatlas.audio_length import audio_seconds
from modelatlas.errors import InvalidRequestError
from modelatlas.parts import AudioPart
from modelatlas.speech_languages import code_of
from modelatlas.transcripts import Segment, TranscribeParams, Transcript, Word
from modelatlas.types import Usage

# OpenAI's transcribe models built on GPT-4o take json or text only, and give no timestamps.
_JSON_ONLY = re.compile(r"gpt-4o.*transcribe", re.I)
MEDIA_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "webm": "audio/webm",
    "m4a": "audio/mp4",
    "mp4": "audio/mp4",
}


def response_format(remote_model: str, chosen: str | None) -> str:
    """The richest answer the model gives: ``chosen`` when the record sets one, else
    verbose_json except for the gpt-4o transcribe models."""
    if chosen:
        return chosen
    return "json" if _JSON_ONLY.search(remote_model) else "verbose_json"


def request(part: AudioPart, data: bytes, params: TranscribeParams, model: str, form: str) -> dict[str, Any]:
    """The arguments of ``audio.transcriptions.create`` for one call."""
    fmt = part.audio_format()
    name = part.path.name if part.path is not None else f"audio.{fmt}"
    args: dict[str, Any] = {
        "model": model,
        "file": (name, data, MEDIA_TYPES.get(fmt, "application/octet-stream")),
        "response_format": form,
        "temperature": params.temperature,
    }
    if params.language:
        args["language"] = params.language
    if params.prompt:
        args["prompt"] = params.prompt
    if params.word_timestamps:
        if form != "verbose_json":
            raise InvalidRequestError(
                f"{model} gives no word timestamps: it answers only with the text ({form}).",
                hint="Leave word timestamps off, or use a Whisper model (openai/whisper-1).",
                param="word_timestamps",
            )
        args["timestamp_granularities"] = ["word", "segment"]
    return args


def transcript(
    response: Any, part: AudioPart, data: bytes, params: TranscribeParams, model_id: str
) -> Transcript:
    """A Transcript from the SDK's answer (a TranscriptionVerbose or a Transcription)."""
    segments = [_segment(i, s) for i, s in enumerate(getattr(response, "segments", None) or [])]
    words = [_word(w) for w in getattr(response, "words", None) or []]
    if words:
        segments = _with_words(segments, words)
    duration = getattr(response, "duration", None)
    if duration is None:
        duration = _usage_seconds(getattr(response, "usage", None))
    if duration is None:
        duration = audio_seconds(data)
    language = getattr(response, "language", None)
    return Transcript(
        text=(response.text or "").strip(),
        model=model_id,
        language=code_of(language) if language else params.language,
        duration_s=float(duration or 0.0),
        segments=segments,
        usage=_usage(getattr(response, "usage", None), float(duration or 0.0)),
    )


def _usage_seconds(usage: Any) -> float | None:
    if usage is not None and getattr(usage, "type", None) == "duration":
        return getattr(usage, "seconds", None)
    return None


def _usage(usage: Any, seconds: float) -> Usage:
    """Audio seconds always (what speech is billed by); tokens when the server counts them."""
    if usage is not None and getattr(usage, "type", None) == "tokens":
        return Usage(
            input_tokens=getattr(usage, "input_tokens", 0) or 0,
            output_tokens=getattr(usage, "output_tokens", 0) or 0,
            audio_seconds=seconds,
        )
    return Usage(audio_seconds=seconds)


def _segment(index: int, s: Any) -> Segment:
    return Segment(
        id=index,
        start=s.start,
        end=s.end,
        text=s.text,
        tokens=list(getattr(s, "tokens", None) or []),
        temperature=getattr(s, "temperature", None) or 0.0,
        avg_logprob=getattr(s, "avg_logprob", None),
        compression_ratio=getattr(s, "compression_ratio", None),
        no_speech_prob=getattr(s, "no_speech_prob", None),
    )


def _word(w: Any) -> Word:
    return Word(word=w.word, start=w.start, end=w.end, probability=getattr(w, "probability", None))


def _with_words(segments: list[Segment], words: list[Word]) -> list[Segment]:
    """verbose_json lists the words apart from the segments: each goes to the last segment that
    starts at or before it (one segment spans them all when the server sent none)."""
    if not segments:
        text = "".join(w.word if w.word.startswith(" ") else " " + w.word for w in words)
        return [Segment(id=0, start=words[0].start, end=words[-1].end, text=text, words=words)]
    owned: list[list[Word]] = [[] for _ in segments]
    for word in words:
        index = 0
        for i, segment in enumerate(segments):
            if segment.start <= word.start + 1e-6:
                index = i
        owned[index].append(word)
    return [s.model_copy(update={"words": w}) for s, w in zip(segments, owned, strict=True)]
