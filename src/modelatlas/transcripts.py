"""Speech to text: what a transcription call takes and what it gives back.

A :class:`Transcript` is what every speech model returns, local or hosted: the text, the
language, the audio's duration and the timed segments (with words when asked for). Its usage
counts the audio's seconds, which is what speech models are billed by; its timing is the
wall time of the call, so ``real_time_factor`` (processing time over audio time, below 1 is
faster than real time) compares speech models the way tokens per second compares text ones.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from modelatlas.types import Timing, Usage

__all__ = ["Segment", "TranscribeParams", "Transcript", "Word"]


class TranscribeParams(BaseModel):
    """How to transcribe. Every field takes part in the response cache key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    language: str | None = Field(None, description="ISO-639-1 code such as 'en'; None detects it")
    prompt: str | None = Field(None, description="text that precedes the audio: names, spelling, style")
    temperature: float = Field(0.0, ge=0.0, le=1.0)
    word_timestamps: bool = False


class Word(BaseModel):
    model_config = ConfigDict(extra="forbid")

    word: str
    start: float
    end: float
    probability: float | None = None


class Segment(BaseModel):
    """A stretch of the audio and its text, with the decoder's confidence figures."""

    model_config = ConfigDict(extra="forbid")

    id: int
    start: float
    end: float
    text: str
    tokens: list[int] = Field(default_factory=list)
    temperature: float = 0.0
    avg_logprob: float | None = None
    compression_ratio: float | None = None
    no_speech_prob: float | None = None
    words: list[Word] = Field(default_factory=list)


class Transcript(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    model: str
    language: str | None = None  # ISO-639-1, as detected or as given
    language_probability: float | None = None
    duration_s: float = 0.0  # the audio's length
    segments: list[Segment] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    timing: Timing = Field(default_factory=Timing)
    cached: bool = False

    @property
    def real_time_factor(self) -> float | None:
        """Processing time over audio time (0.25: four times faster than real time)."""
        if self.duration_s <= 0 or self.timing.latency_s <= 0:
            return None
        return self.timing.latency_s / self.duration_s

    @property
    def words(self) -> list[Word]:
        return [word for segment in self.segments for word in segment.words]
