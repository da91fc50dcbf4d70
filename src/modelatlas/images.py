"""Text to image: what an image-generation call takes and what it gives back.

:class:`Images` is what every image model returns, local (a diffusers pipeline) or hosted
(OpenAI's ``images.generate``): the pictures as encoded bytes (PNG unless the model says
otherwise), each with its size and the seed that made it. Its usage counts the images, which is
what image models are billed by; its timing is the wall time of the whole call.

``size`` is ``"WIDTHxHEIGHT"`` as OpenAI's API spells it; None leaves the model's default.
``seed`` makes a local pipeline repeatable (image ``i`` of a call uses ``seed + i``); hosted
APIs take no seed and say so in the image's ``seed`` (None).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelatlas.parts import Base64Bytes, ImagePart
from modelatlas.types import Timing, Usage

__all__ = ["GeneratedImage", "ImageParams", "Images", "parse_size"]

_SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})$")
MAX_IMAGES = 10  # OpenAI's limit of images a call, and ours


def parse_size(size: str) -> tuple[int, int]:
    """``"512x768"`` as (width, height); a ValueError that shows the form otherwise."""
    match = _SIZE.match(size.strip().lower())
    if not match:
        raise ValueError(f"size must be WIDTHxHEIGHT, for example 512x512 (got {size!r})")
    width, height = int(match[1]), int(match[2])
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise ValueError(f"size {size!r} is out of range: each side from 16 to 8192 pixels")
    return width, height


class ImageParams(BaseModel):
    """How to make the images. Every field takes part in the response cache key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    size: str | None = Field(None, description="WIDTHxHEIGHT, e.g. 512x512; None: the model's default")
    n: int = Field(1, ge=1, le=MAX_IMAGES, description="how many images")
    steps: int | None = Field(None, ge=1, le=1000, description="denoising steps (local pipelines)")
    guidance: float | None = Field(None, ge=0.0, le=50.0, description="classifier-free guidance scale")
    negative_prompt: str | None = Field(None, description="what the image should not show")
    seed: int | None = Field(0, description="image i uses seed + i; None: random (local pipelines)")
    quality: str | None = Field(None, description="hosted models: standard, hd, low, medium, high")

    @field_validator("size")
    @classmethod
    def _size_form(cls, value: str | None) -> str | None:
        if value is None:
            return None
        width, height = parse_size(value)
        return f"{width}x{height}"

    def dimensions(self) -> tuple[int, int] | None:
        """(width, height) when a size was asked for."""
        return parse_size(self.size) if self.size else None


class GeneratedImage(BaseModel):
    """One picture: its encoded bytes (base64 in JSON) and what made it."""

    model_config = ConfigDict(extra="forbid")

    data: Base64Bytes
    media_type: str = "image/png"
    width: int | None = None
    height: int | None = None
    seed: int | None = None  # the seed that made it; None where the model takes none (hosted)
    revised_prompt: str | None = None  # the prompt a hosted model rewrote and drew (dall-e-3)

    def to_part(self) -> ImagePart:
        """The image as a message part (to show it to a vision judge, for example)."""
        return ImagePart(data=self.data, media_type=self.media_type)

    def suffix(self) -> str:
        return {"image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}.get(self.media_type, ".png")

    def save(self, path: str | Path) -> Path:
        """Write the bytes to ``path`` (its folder made) and return it."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.data)
        return target


class Images(BaseModel):
    """The answer of an image-generation call."""

    model_config = ConfigDict(extra="forbid")

    images: list[GeneratedImage]
    model: str = ""
    prompt: str = ""
    usage: Usage = Field(default_factory=Usage)  # usage.images = len(images)
    timing: Timing = Field(default_factory=Timing)
    cached: bool = False
