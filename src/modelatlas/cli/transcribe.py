"""`modelatlas run` for speech: PROMPT is an audio file (or '-', its bytes on standard input).

A speech-recognition model (mode ``transcription``, or a backend that can only transcribe)
prints its transcript; ``--json`` prints the text, language, duration, timed segments, latency,
real-time factor, usage and cost. The checks here make each wrong pairing a clear exit 2: a text
prompt for a speech model, a missing audio file, an audio file for a model that takes none.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from modelatlas.cli.common import console, print_json
from modelatlas.errors import InvalidRequestError
from modelatlas.formats import usd

# What PyAV (faster-whisper's decoder) and OpenAI's transcriptions endpoint take.
AUDIO_SUFFIXES = {".wav", ".mp3", ".mpga", ".mpeg", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".webm"}


def transcribes(llm) -> bool:
    """Whether the model is a speech-recognition one: its mode, or facts that allow nothing else."""
    from modelatlas.backends.declared import facts

    return llm.record.mode == "transcription" or facts(llm.record).capabilities == {"transcription"}


def audio_file(prompt: str) -> Path | None:
    """PROMPT as an audio file that exists, when it is one."""
    path = Path(prompt).expanduser()
    return path if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file() else None


def audio_prompt(llm, prompt: str, system: str | None):
    """For an audio file PROMPT: the messages that send it to a chat model that takes audio, or
    an error naming what the model takes instead. None when PROMPT is not an audio file."""
    from modelatlas.backends.declared import facts
    from modelatlas.parts import AudioPart
    from modelatlas.types import Message

    path = audio_file(prompt)
    if path is None:
        return None
    accepts = facts(llm.record).accepts
    if "audio" not in accepts or llm.record.mode != "chat":
        takes = " and ".join(sorted(accepts)) or "text"
        raise InvalidRequestError(
            f"{llm.id} takes {takes}, not audio: it cannot read {path}.",
            hint="Transcribe it with a speech-recognition model, for example "
            "`modelatlas run local/whisper-base FILE`.",
        )
    return [*([Message.system(system)] if system else []), Message.user([AudioPart(path=path)])]


def transcribe_command(
    llm,
    prompt: str,
    language: str | None,
    word_timestamps: bool,
    temperature: float,
    context: str | None,
    json_out: bool,
) -> None:
    """Transcribe PROMPT's audio with ``llm`` and print the transcript (or the JSON summary)."""
    if temperature > 1.0:
        raise InvalidRequestError(
            f"--temperature {temperature} is above 1, the most a speech model takes.",
            hint="Use a temperature between 0 and 1 (0: greedy, with fallback).",
        )
    source = _source(llm.id, prompt)
    options = {"language": language, "word_timestamps": word_timestamps, "temperature": temperature}
    transcript = asyncio.run(_transcribe(llm, source, {**options, "prompt": context}))
    if json_out:
        print_json(summary(transcript))
        return
    sys.stdout.write(transcript.text + "\n")
    sys.stdout.flush()
    _line(transcript)


async def _transcribe(llm, source: Path | bytes, options: dict[str, Any]):
    try:
        return await llm.transcribe(source, **options)
    finally:
        await llm.aclose()


def _source(model_id: str, prompt: str) -> Path | bytes:
    """The audio PROMPT names: a file's path, or standard input's bytes for '-'."""
    if prompt == "-":
        data = sys.stdin.buffer.read()
        if not data:
            raise InvalidRequestError(
                "Standard input is empty: there is no audio to transcribe.",
                hint="Pipe an audio file in: `modelatlas run MODEL - < speech.wav`.",
            )
        return data
    path = Path(prompt).expanduser()
    if path.is_file():
        return path
    if path.suffix.lower() in AUDIO_SUFFIXES or path.is_dir():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise InvalidRequestError(f"The audio file {prompt} {what}.", hint="Check the path.")
    raise InvalidRequestError(
        f"{model_id} is a speech-recognition model: it needs an audio file, not a text prompt.",
        hint="Give the path of a WAV, MP3, FLAC, OGG, M4A or WebM file, or '-' to read the audio from "
        "standard input: `modelatlas run MODEL speech.wav`.",
    )


def summary(transcript) -> dict[str, Any]:
    """What `run --json` prints of a transcript."""
    rtf = transcript.real_time_factor
    return {
        "model": transcript.model,
        "text": transcript.text,
        "language": transcript.language,
        "language_probability": _round(transcript.language_probability, 4),
        "duration_s": round(transcript.duration_s, 3),
        "segments": [_segment(s) for s in transcript.segments],
        "latency_s": round(transcript.timing.latency_s, 4),
        "real_time_factor": _round(rtf, 4),
        "usage": {"audio_seconds": round(transcript.usage.audio_seconds, 3)},
        "cost_usd": transcript.usage.cost_usd,
        "cached": transcript.cached,
    }


def _segment(segment) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": segment.id,
        "start": round(segment.start, 3),
        "end": round(segment.end, 3),
        "text": segment.text.strip(),
    }
    if segment.words:
        data["words"] = [
            {"word": w.word.strip(), "start": round(w.start, 3), "end": round(w.end, 3)}
            for w in segment.words
        ]
    return data


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _line(transcript) -> None:
    rtf = transcript.real_time_factor
    language = transcript.language or "?"
    if transcript.language_probability is not None:
        language += f" ({transcript.language_probability:.2f})"
    console(stderr=True).print(
        f"[dim]{transcript.model} · {language} · {transcript.duration_s:.1f}s of audio · "
        f"{transcript.timing.latency_s:.2f}s · real-time factor {rtf:.2f} · "
        f"{usd(transcript.usage.cost_usd)}[/]"
        if rtf is not None
        else f"[dim]{transcript.model} · {language} · {transcript.duration_s:.1f}s of audio[/]"
    )
