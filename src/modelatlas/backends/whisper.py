"""Whisper speech recognition through faster-whisper (CTranslate2), in this process.

The model is a folder as faster-whisper's converter writes it: ``model.bin``, ``config.json``,
``tokenizer.json`` and ``vocabulary.json``. It is opened with ``local_files_only``, so a wrong
location fails here instead of faster-whisper reading it as a model *size* and downloading.

A transcription runs in a worker thread from the first step to the last: faster-whisper decodes
the audio with PyAV, and its ``transcribe`` returns the segments as a lazy generator that does
the real work as it is consumed, so the generator is drained in that thread too. The audio is
decoded up front, on its own, so a file that is not audio fails with a message that says so
instead of a decoder traceback from somewhere inside the model call.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from modelatlas.backends.base import Backend, BackendOptions, require
from modelatlas.backends.declared import BackendFacts
from modelatlas.errors import ConfigError, InvalidRequestError, ModelFileError
from modelatlas.parts import AudioPart
from modelatlas.transcripts import Segment, TranscribeParams, Transcript, Word
from modelatlas.types import Completion, GenerationParams, Prompt, Usage

SAMPLE_RATE = 16_000  # what Whisper's feature extractor takes; faster-whisper resamples to it
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.json")
# Options that change how fast a transcript comes, not what it says: left out of the identity.
_SPEED_ONLY = {"cpu_threads", "num_workers"}


def _default_threads() -> int:
    """Four threads at most: CTranslate2 gains little beyond that for a model of Whisper base's
    size, and the rest of the machine stays free for other work."""
    return max(1, min(4, os.cpu_count() or 1))


class WhisperOptions(BackendOptions):
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: str = Field("int8", description="CTranslate2 quantisation: int8, int8_float32, float32...")
    cpu_threads: int = Field(default_factory=_default_threads, ge=1, le=256)
    num_workers: int = Field(1, ge=1, le=16, description="transcriptions that may run at once")
    beam_size: int = Field(5, ge=1, le=32)
    best_of: int = Field(5, ge=1, le=32, description="candidates when sampling at a temperature above 0")
    vad_filter: bool = Field(False, description="skip silence with Silero VAD before decoding")
    condition_on_previous_text: bool = Field(
        True, description="give the previous window's text as the next one's prompt"
    )
    no_speech_threshold: float = Field(0.6, ge=0.0, le=1.0)


class FasterWhisperBackend(Backend):
    name = "whisper"
    Options = WhisperOptions
    capabilities = frozenset({"transcription"})
    accepts = frozenset({"audio"})

    @classmethod
    def facts(cls, record) -> BackendFacts:
        options = cls.options_of(record)
        return cls.declare(
            record,
            local=True,
            max_connections=options.num_workers,
            memory_bytes=_memory_bytes(record),
            file_format="ctranslate2",
        )

    def __init__(self, model_id: str, location: str | None, options: WhisperOptions):
        if not location:
            raise ConfigError(
                f"{model_id}: the whisper backend needs the folder of a faster-whisper model.",
                hint="Point the record's location at a folder holding model.bin, config.json, "
                "tokenizer.json and vocabulary.json.",
            )
        super().__init__(model_id, location, options)
        self._model: Any = None

    def load(self) -> None:
        if self._model is not None:
            return
        faster_whisper = require("faster_whisper", extra="speech", package="faster-whisper")
        folder = _model_folder(self.model_id, self.location)
        o = self.options
        try:
            self._model = faster_whisper.WhisperModel(
                str(folder),
                device=o.device,
                compute_type=o.compute_type,
                cpu_threads=o.cpu_threads,
                num_workers=o.num_workers,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelFileError(
                f"{self.model_id}: faster-whisper cannot load the model in {folder}: {exc}",
                hint="Check that model.bin is whole (its size and sha256) and that compute_type "
                "suits this machine (int8 on CPU).",
            ) from None

    def identity(self) -> str:
        from modelatlas.backends.identity import fingerprint

        weights = fingerprint(Path(self.location) / "model.bin")
        options = self.options.model_dump(mode="json", exclude=_SPEED_ONLY)
        return f"whisper:{weights}:{json.dumps(options, sort_keys=True)}"

    async def generate(self, prompt: Prompt, params: GenerationParams) -> Completion:
        raise ConfigError(
            f"{self.model_id} is a speech-recognition model: it transcribes audio, it does not write text.",
            hint="Give it an audio file: `modelatlas run MODEL speech.wav`, or Model.transcribe().",
        )

    async def transcribe(self, audio: AudioPart, params: TranscribeParams) -> Transcript:
        return await asyncio.to_thread(self._transcribe, audio, params)

    async def aclose(self) -> None:
        """Drop the model: CTranslate2 frees its memory when the last reference goes."""
        self._model = None

    # -- internals (worker thread) ---------------------------------------------------------

    def _transcribe(self, audio: AudioPart, params: TranscribeParams) -> Transcript:
        self.load()
        samples = _decode(audio)
        model, o = self._model, self.options
        if params.language is not None and params.language not in model.supported_languages:
            raise InvalidRequestError(
                f"{self.model_id} does not know the language {params.language!r}.",
                hint="Give an ISO-639-1 code such as 'en', 'fr' or 'de', or leave it out to detect it.",
                param="language",
            )
        extra: dict[str, Any] = {} if params.temperature == 0 else {"temperature": params.temperature}
        segments, info = model.transcribe(
            samples,
            language=params.language,
            initial_prompt=params.prompt,
            word_timestamps=params.word_timestamps,
            beam_size=o.beam_size,
            best_of=o.best_of,
            vad_filter=o.vad_filter,
            condition_on_previous_text=o.condition_on_previous_text,
            no_speech_threshold=o.no_speech_threshold,
            **extra,
        )
        timed = [_segment(i, s) for i, s in enumerate(segments)]  # the decoding happens here
        return Transcript(
            text="".join(s.text for s in timed).strip(),
            model=self.model_id,
            language=info.language,
            language_probability=info.language_probability,
            duration_s=info.duration,
            segments=timed,
            usage=Usage(audio_seconds=info.duration),
        )


def _model_folder(model_id: str, location: str | None) -> Path:
    """The model's folder, checked for faster-whisper's four files."""
    folder = Path(location or "").expanduser()
    if not folder.is_dir():
        raise ModelFileError(
            f"{model_id}: {folder} is not a folder: a faster-whisper model is a folder of files.",
            hint="Point the location at the folder holding " + ", ".join(MODEL_FILES) + ".",
        )
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelFileError(
            f"{model_id}: the model folder {folder} lacks {', '.join(missing)}.",
            hint="A faster-whisper model folder holds " + ", ".join(MODEL_FILES) + ".",
        )
    return folder


def _decode(audio: AudioPart):
    """The audio as 16 kHz mono float32 samples; anything PyAV cannot read is the caller's error."""
    from faster_whisper.audio import decode_audio

    source: Any = io.BytesIO(audio.read()) if audio.path is None else audio.path
    what = f"the audio file {audio.path}" if audio.path is not None else f"the {len(audio.data)} audio bytes"
    if audio.path is not None and not audio.path.is_file():
        raise InvalidRequestError(
            f"Cannot read {what}: there is no such file.", hint="Check the path of the audio file."
        )
    try:
        samples = decode_audio(source, sampling_rate=SAMPLE_RATE)
    except Exception as exc:  # PyAV's errors (InvalidDataError...) differ by version and container
        raise InvalidRequestError(
            f"Cannot decode {what} as audio: {_reason(exc)}.",
            hint="Send a WAV, MP3, FLAC, OGG, M4A or WebM file that holds sound.",
        ) from None
    if samples.size == 0:
        raise InvalidRequestError(
            f"There is no sound in {what}: it decodes to zero samples.",
            hint="Send a recording at least a fraction of a second long.",
        )
    return samples


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _segment(index: int, s: Any) -> Segment:
    """Our segment from faster-whisper's; ids count from 0, as OpenAI's verbose_json does."""
    return Segment(
        id=index,
        start=s.start,
        end=s.end,
        text=s.text,
        tokens=list(s.tokens),
        temperature=s.temperature if s.temperature is not None else 0.0,
        avg_logprob=s.avg_logprob,
        compression_ratio=s.compression_ratio,
        no_speech_prob=s.no_speech_prob,
        words=[Word(word=w.word, start=w.start, end=w.end, probability=w.probability) for w in s.words or []],
    )


def _memory_bytes(record) -> int | None:
    """The record's estimate, else model.bin's size: the weights CTranslate2 loads."""
    if record.memory_gb is not None:
        return int(record.memory_gb * 2**30)
    if not record.location:
        return None
    try:
        return (Path(record.location).expanduser() / "model.bin").stat().st_size
    except OSError:
        return None
