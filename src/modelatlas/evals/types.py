"""Value types of an evaluation: model outputs and scores (dataset items live in core, re-exported here)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from modelatlas.items import Item
from modelatlas.parts import ToolCall
from modelatlas.types import Message, Usage

__all__ = ["Item", "ItemResult", "Output", "PairResult", "RunInfo", "Score", "StoredImage", "arm_label"]


class StoredImage(BaseModel):
    """A picture an image model made for an item, kept with the run as a file in the home
    (``path`` is relative to the home: ``runs/<run id>/images/<file>``), and its sha256 so that a
    reader can tell the file is the one the run made."""

    model_config = ConfigDict(extra="forbid")

    path: str
    sha256: str
    media_type: str = "image/png"
    width: int | None = None
    height: int | None = None
    seed: int | None = None


class Output(BaseModel):
    """What a model produced for one item."""

    model_config = ConfigDict(extra="forbid")

    text: str = ""
    error: str | None = None
    usage: Usage = Field(default_factory=Usage)
    latency_s: float | None = None
    ttft_s: float | None = None
    cached: bool = False
    # For multiple choice scored by log-likelihood: the log-probability of each choice.
    choice_logprobs: list[float] | None = None
    # For retrieval: the ids of what was retrieved, best first (RAG strategies fill it).
    retrieved: list[str] | None = None
    contexts: list[str] | None = None
    # How many few-shot examples or retrieved chunks the context-budget guard left out.
    dropped: int = 0
    prompt_tokens: int | None = None
    # Few-shot: the examples the prompt holds, and how many fewer than the strategy asks for,
    # for any reason (a small pool, rows without an answer, the context guard).
    examples: int | None = None
    examples_short: int = 0
    # Exactly what was sent: the messages for a chat model, the text for a completion model.
    prompt: str | list[Message] | None = None
    # Every answer when an item is answered several times (--samples-per-item N), in sample order;
    # the first is ``text``. Left out of a dump when None, so single-sample outputs dump as before.
    samples: list[str] | None = None
    # An image model's pictures for the item (evals.image_plan); left out of a dump when None.
    images: list[StoredImage] | None = None
    # The tools the model called (an item with ``tools``), as the model wrote them (the
    # arguments are its JSON text, unparsed); left out of a dump when None.
    tool_calls: list[ToolCall] | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in ("samples", "images", "tool_calls"):
            if getattr(self, key) is None:
                data.pop(key, None)
        return data


class Score(BaseModel):
    """A metric's verdict on one item. An error is a value of its own, never a NaN."""

    model_config = ConfigDict(extra="forbid")

    value: float | None = None
    error: str | None = None
    # What the aggregate needs beyond the value (e.g. predicted and gold label for macro_f1),
    # and what explains the value (e.g. the judge's raw answer).
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and self.value is not None


class ItemResult(BaseModel):
    """One item answered by one arm (a model with a strategy) in a run, with its scores."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    model: str
    strategy: str = "zero-shot"
    item_id: str
    index: int  # position of the item in the dataset
    output: Output
    scores: dict[str, Score] = Field(default_factory=dict)


class PairResult(BaseModel):
    """A pairwise judge verdict on one item: 1.0 when A is better, 0.0 when B is, 0.5 for a tie."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    metric: str
    a: str  # arm label "model" or "model@strategy"
    b: str
    item_id: str
    score: Score


class RunInfo(BaseModel):
    """A run's settings and state, as stored."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str | None = None
    dataset_path: str
    dataset_hash: str
    dataset_n: int
    models: list[str]
    strategies: list[str]
    metrics: list[str]
    judge: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    status: str = "running"  # running, done, failed (every answer errored), interrupted
    created_at: str | None = None
    finished_at: str | None = None
    owner_pid: int | None = None  # the process that runs (or last ran) it, on owner_host
    owner_host: str | None = None
    heartbeat_at: str | None = None  # refreshed while it runs


def arm_label(model: str, strategy: str) -> str:
    """How an arm is named in reports: the model, with the strategy unless it is zero-shot."""
    return model if strategy == "zero-shot" else f"{model}@{strategy}"
