"""Scoring generated pictures: ``clip_score``, and what the judges are shown of an image run.

``clip_score`` is CLIPScore without references (Hessel et al. 2021, as torchmetrics computes it):
``100 x max(cos(E_image, E_prompt), 0)`` with the embeddings of a CLIP model the user has on disk
(option ``clip_model``, the CLI's ``--clip-model DIR``: a Hugging Face CLIP folder with its
config, weights, tokenizer and processor). Nothing is downloaded: without a folder the metric is
refused before the run. An item's value is the mean over its pictures (one unless
``--images-per-item`` asks for more); the run's is the mean over items. Each pair is clamped at 0,
as the paper defines it per image; torchmetrics' ``CLIPScore`` clamps the mean of a whole batch
instead, so the two agree when no cosine is negative. A prompt longer than CLIP's text window is
cut by the tokenizer (its end-of-text token kept), where torchmetrics slices the token ids.

The judges (``judge_score``, ``judge_pass``, ``judge_pairwise`` in :mod:`.judge`) see a picture
run's outputs through :func:`image_question` and :func:`image_pair`: the first picture of each
output as an image part before the question, with the prompt it was made for.
"""

from __future__ import annotations

import asyncio
import io
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelatlas.errors import ConfigError
from modelatlas.evals.metrics.base import Context, Metric
from modelatlas.evals.metrics.options import MetricOptions
from modelatlas.evals.types import Item, Output, Score
from modelatlas.parts import ImagePart, Part, TextPart
from modelatlas.registry import require

if TYPE_CHECKING:
    from collections.abc import Sequence

NO_CLIP = "clip_score needs a CLIP model on disk, and none was given."
CLIP_HINT = (
    "Pass a local CLIP folder (a Hugging Face CLIPModel with its tokenizer and processor, e.g. a "
    "downloaded openai/clip-vit-base-patch32): --clip-model DIR, or clip_model=DIR from Python. "
    "Nothing is downloaded."
)

IMAGE_SCORE_PROMPT = """You are grading a picture that a text-to-image model made for this prompt:

{question}

The picture is attached. Rate from 1 to 5 how well it shows what the prompt asks: 1 means it shows
none of it, 3 means part of it, 5 means all of it, clearly. Explain briefly, then end with a final
line of the form "Score: N", where N is 1, 2, 3, 4 or 5."""

IMAGE_PASS_PROMPT = """You are checking a picture that a text-to-image model made for this prompt:

{question}

The picture is attached. Decide whether it is acceptable: it shows what the prompt asks. Explain
briefly, then end with a final line that is either "Verdict: PASS" or "Verdict: FAIL"."""

IMAGE_PAIRWISE_PROMPT = """You are comparing two pictures that text-to-image models made for the same prompt:

{question}

Picture A and picture B are attached. Decide which shows what the prompt asks better. Do not let
the order of the pictures sway you. Explain briefly, then end with a final line that is
"Winner: A", "Winner: B" or "Winner: TIE"."""

SINGLE_PROMPTS = {"judge_score": IMAGE_SCORE_PROMPT, "judge_pass": IMAGE_PASS_PROMPT}


def first_picture(output: Output) -> ImagePart:
    """The output's first picture as a message part, read from the run's folder."""
    from modelatlas.evals.image_plan import read_image

    if not output.images:
        raise ConfigError("One of the outputs has no picture to show the judge.")
    stored = output.images[0]
    return ImagePart(data=read_image(stored), media_type=stored.media_type)


def image_question(metric: str, output: Output) -> tuple[str, list[Part]]:
    """A single judge's prompt template for a picture, and the parts shown before it."""
    return SINGLE_PROMPTS[metric], [first_picture(output)]


def image_pair(output_a: Output, output_b: Output) -> tuple[str, list[list[Part]]]:
    """The pairwise prompt template for pictures, and what is shown in each order (A first, B first)."""
    a, b = first_picture(output_a), first_picture(output_b)
    orders: list[list[Part]] = [
        [TextPart(text="Picture A:"), x, TextPart(text="Picture B:"), y] for x, y in ((a, b), (b, a))
    ]
    return IMAGE_PAIRWISE_PROMPT, orders


# -- clip_score --------------------------------------------------------------------------------


class ClipOptions(MetricOptions):
    clip_model: str | None = None  # a local CLIP folder; required in practice (no download)


class ClipScore(Metric):
    """100 x max(cos(image, prompt), 0) under a local CLIP model, the mean over an item's pictures."""

    name = "clip_score"
    bounds = (0.0, 100.0)
    Options = ClipOptions
    options: ClipOptions
    needs_reference = False

    def check(self, items: Sequence[Item] | None = None) -> None:
        clip_folder(self.options.clip_model)

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        if not output.images:
            return Score(error="no picture to score: clip_score scores an image model's pictures")
        folder = clip_folder(self.for_context(ctx).options.clip_model)
        values = await asyncio.to_thread(_score_files, folder, item.prompt_text, output)
        return Score(value=sum(values) / len(values), data={"per_image": values, "clip_model": str(folder)})


def clip_folder(given: str | None) -> Path:
    """The CLIP folder, checked: given, a folder, with a config.json."""
    if not given:
        raise ConfigError(NO_CLIP, hint=CLIP_HINT)
    folder = Path(given).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"clip_score's CLIP folder {folder} does not exist.", hint=CLIP_HINT)
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{folder} holds no config.json: no Hugging Face CLIP folder.", hint=CLIP_HINT)
    return folder


def _score_files(folder: Path, prompt: str, output: Output) -> list[float]:
    from modelatlas.evals.image_plan import read_image

    return clip_scores(folder, prompt, [read_image(s) for s in output.images or []])


_LOADED: dict[str, tuple[Any, Any]] = {}
_LOCK = threading.Lock()  # one load per folder, and one forward pass at a time


def _clip(folder: Path) -> tuple[Any, Any]:
    """The folder's CLIP model and processor, loaded once a process (offline)."""
    key = str(folder.resolve())
    if key not in _LOADED:
        transformers = require("transformers", "vision")
        require("torch", "vision")
        try:
            model = transformers.CLIPModel.from_pretrained(key, local_files_only=True).eval()
            processor = transformers.CLIPProcessor.from_pretrained(key, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"Cannot load a CLIP model from {folder}: {exc}", hint=CLIP_HINT) from None
        _LOADED[key] = (model, processor)
    return _LOADED[key]


def _embedding(found: Any) -> Any:
    """transformers 5 returns a model output whose pooler_output is the projected embedding;
    earlier versions the tensor itself."""
    embedded = getattr(found, "pooler_output", found)
    return embedded / embedded.norm(p=2, dim=-1, keepdim=True)


def clip_scores(folder: Path, prompt: str, pictures: list[bytes]) -> list[float]:
    """CLIPScore of each picture (encoded bytes) against the prompt, under the folder's CLIP."""
    image_module = require("PIL.Image", "vision", "pillow")
    torch = require("torch", "vision")
    opened = [image_module.open(io.BytesIO(data)).convert("RGB") for data in pictures]
    with _LOCK:
        model, processor = _clip(folder)
        window = model.config.text_config.max_position_embeddings
        with torch.inference_mode():
            pixels = processor(images=opened, return_tensors="pt")["pixel_values"]
            words = processor(
                text=[prompt], return_tensors="pt", padding=True, truncation=True, max_length=window
            )
            image = _embedding(model.get_image_features(pixel_values=pixels))
            text = _embedding(
                model.get_text_features(input_ids=words["input_ids"], attention_mask=words["attention_mask"])
            )
            cosines = 100 * (image * text).sum(dim=-1)
    return [max(float(c), 0.0) for c in cosines]
