"""ModelRecord: one model's facts plus how to run it (``backend`` and ``location``).

A fact no source gives stays ``None`` (unknown), never a guess. Lists that no source fills stay
empty. The facet names are the ones `modelatlas catalog search --json` prints.

A core value type: the catalog fills records and the backends read them, so the record lives
below both (it used to live in ``catalog/records.py``, which made ``backends`` import
``catalog`` while ``catalog`` imports ``backends``). ``modelatlas.catalog.records`` re-exports
every name here.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

Mode = Literal["chat", "completion", "embedding", "transcription", "image_generation"]
Task = Literal[
    "text-generation",
    "chat",
    "code",
    "embeddings",
    "image-generation",
    "speech-recognition",
    "text-to-speech",
    "multimodal",
]
Architecture = Literal["decoder-only", "encoder-only", "encoder-decoder", "diffusion", "unknown"]
Hosting = Literal["local", "hosted"]

TASKS: tuple[str, ...] = get_args(Task)
ARCHITECTURES: tuple[str, ...] = get_args(Architecture)
HOSTINGS: tuple[str, ...] = get_args(Hosting)


class Price(BaseModel):
    """USD per 1M tokens, or per hour of compute for models billed by the hour."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = 0.0
    output: float = 0.0
    cache_read: float | None = None
    per_hour: float | None = None
    # USD per minute of audio transcribed (speech models bill by the audio's length).
    audio_per_minute: float | None = None
    # USD per image made (image models bill by the picture, at their default size and quality).
    per_image: float | None = None

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        seconds: float = 0.0,
        audio_seconds: float = 0.0,
        images: int = 0,
    ) -> float:
        cost = (input_tokens * self.input + output_tokens * self.output) / 1_000_000
        if self.per_hour:
            cost += self.per_hour * seconds / 3600
        if self.audio_per_minute:
            cost += self.audio_per_minute * audio_seconds / 60
        if self.per_image:
            cost += self.per_image * images
        return cost


class Modalities(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: list[str] = Field(default_factory=list)
    output: list[str] = Field(default_factory=list)


class Capabilities(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tool_calling: bool | None = None
    reasoning: bool | None = None
    structured_output: bool | None = None
    attachments: bool | None = None


class Benchmark(BaseModel):
    """A published score, with where and when it was published."""

    model_config = ConfigDict(extra="forbid")

    name: str
    score: float
    metric: str | None = None
    source: str | None = None
    date: str | None = None


class Link(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str
    url: str


class ModelRecord(BaseModel):
    """A model as the catalog knows it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._:@+-]+)+$")
    name: str | None = None
    provider: str | None = None
    family: str | None = None
    mode: Mode = "chat"
    tasks: list[Task] = Field(default_factory=list)
    modalities: Modalities | None = None
    architecture: Architecture = "unknown"
    open_weights: bool | None = None
    license: str | None = None
    hosting: Hosting | None = None
    parameters: int | None = None
    quantization: str | None = None
    context_length: int | None = None
    max_output: int | None = None
    price: Price | None = None
    knowledge_cutoff: str | None = None
    release_date: str | None = None
    capabilities: Capabilities = Field(default_factory=Capabilities)
    memory_gb: float | None = None
    fits: bool | None = None
    runnable: bool = False
    description: str | None = None
    base_model: str | None = None
    # For a fine-tuned model: base model, data hash, hyperparameters, final losses, when.
    lineage: dict[str, Any] | None = None
    weights: list[Link] = Field(default_factory=list)
    benchmarks: list[Benchmark] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)
    source: str | None = None
    # How to run it: the backend's registered name, where the model is, and backend options.
    backend: str | None = None
    location: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    def model_post_init(self, __context: Any) -> None:
        if self.provider is None:
            self.provider = self.id.split("/", 1)[0]
        if self.name is None:
            self.name = self.id.split("/", 1)[1]

    def facets(self) -> dict[str, Any]:
        """The record as JSON-ready data, without empty values."""
        return self.model_dump(mode="json", exclude_none=True)
