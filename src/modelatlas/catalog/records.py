"""ModelRecord: one model's facts plus how to run it (``backend`` and ``location``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Mode = Literal["chat", "completion", "embedding"]


class Price(BaseModel):
    """USD per 1M tokens, or per hour of compute for models billed by the hour."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = 0.0
    output: float = 0.0
    cache_read: float | None = None
    per_hour: float | None = None

    def cost(self, input_tokens: int, output_tokens: int, seconds: float = 0.0) -> float:
        cost = (input_tokens * self.input + output_tokens * self.output) / 1_000_000
        if self.per_hour:
            cost += self.per_hour * seconds / 3600
        return cost


class ModelRecord(BaseModel):
    """A model as the catalog knows it. Facts that no source gives stay ``None``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._:@+-]+)+$")
    name: str | None = None
    provider: str | None = None
    mode: Mode = "chat"
    backend: str
    location: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    context_length: int | None = None
    price: Price | None = None
    description: str | None = None

    def model_post_init(self, __context: Any) -> None:
        if self.provider is None:
            self.provider = self.id.split("/", 1)[0]
        if self.name is None:
            self.name = self.id.split("/", 1)[1]
