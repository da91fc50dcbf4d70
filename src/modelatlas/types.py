"""Value types shared by every layer: messages, generation parameters, results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant", "tool"]


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    content: str

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: str) -> Message:
        return cls(role="assistant", content=content)


# A prompt is either a chat (a list of messages, rendered with the model's chat template)
# or a plain string, sent as is for completion.
Prompt = str | Sequence[Message]


class GenerationParams(BaseModel):
    """Sampling settings. Every field takes part in the response cache key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: tuple[str, ...] = ()
    seed: int | None = 0


class Usage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
        )


class Timing(BaseModel):
    """Measured by the Model wrapper: wall time, time to first token and decode speed."""

    model_config = ConfigDict(extra="forbid")

    latency_s: float = 0.0
    ttft_s: float | None = None
    tokens_per_s: float | None = None


FinishReason = Literal["stop", "length", "error", "cancelled"]


class Completion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    model: str
    finish_reason: FinishReason = "stop"
    usage: Usage = Field(default_factory=Usage)
    timing: Timing = Field(default_factory=Timing)
    cached: bool = False  # served from the response cache (usage and timing are the original ones)


class Chunk(BaseModel):
    """One piece of a stream. The last chunk carries ``finish_reason`` and the usage
    (and, from the Model wrapper, the timing)."""

    model_config = ConfigDict(extra="forbid")

    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    timing: Timing | None = None


class Embeddings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vectors: list[list[float]]
    model: str
    usage: Usage = Field(default_factory=Usage)


class LogLikelihood(BaseModel):
    """Log-probability of a continuation given a context, as used for multiple choice."""

    model_config = ConfigDict(extra="forbid")

    logprob: float
    is_greedy: bool
    tokens: int
