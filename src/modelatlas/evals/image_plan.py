"""Image generation in an evaluation: which arms draw, what a plan with them must not ask, and
where their pictures are kept.

An image-generation model (its facts say it makes images and generates no text) answers an item
with ``Model.generate_image`` of the item's prompt (the dataset's input field), made with the
run's image settings (``Plan.image_params``: the CLI's ``--size``, ``--steps``, ``--image-seed``,
``--images-per-item``; stored with the run, so a resume makes the same pictures).

Every picture is kept with the run as a file in the home,
``<home>/runs/<run id>/images/<item index>-<item id>-<model>-<i><suffix>`` (odd characters of the
ids as ``_``), and the stored output (``Output.images``) holds its path relative to the home and
its sha256: the metrics, ``runs show``, the run's page and ``runs export --out DIR`` all read
those files, and a file changed since the run is refused rather than scored. A resumed run writes
an unfinished item's files again (the same seed makes the same bytes, or the response cache has
them).

A plan that mixes image models with text models is refused (they answer different things and no
metric scores both), as are strategies for image models, metrics that score text, and a judge
that cannot see pictures.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from modelatlas.errors import ConfigError, ModelAtlasError
from modelatlas.evals.speech_plan import ZERO_SHOT, _facts, _listed, _record
from modelatlas.evals.types import Output, StoredImage
from modelatlas.images import ImageParams

if TYPE_CHECKING:
    from modelatlas.backends.declared import BackendFacts
    from modelatlas.backends.model import Model
    from modelatlas.evals.plan import Plan
    from modelatlas.evals.results import ArmEstimate
    from modelatlas.evals.types import Item
    from modelatlas.images import GeneratedImage
    from modelatlas.records import ModelRecord

IMAGE_METRICS = ("clip_score", "judge_score", "judge_pass", "judge_pairwise")
NOT_SEEING = ("completion", "embedding", "transcription", "image_generation")


def draws(facts: BackendFacts) -> bool:
    """Whether a model is an image generator: it makes images and does not generate text."""
    return facts.can("image_generation") and not facts.can("generate")


def image_params(plan: Plan) -> ImageParams:
    """The run's image settings, checked; a ConfigError that says which one is wrong."""
    try:
        return ImageParams.model_validate(plan.image_params or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ConfigError(
            f"The image setting {key} cannot be {err.get('input')!r}: {err['msg']}.",
            hint="--size WIDTHxHEIGHT (e.g. 512x512), --steps 1..1000, --images-per-item 1..10.",
        ) from None


def check_images_out(plan: Plan) -> None:
    """Refuse a plan that mixes image and text models, or asks an image run what it cannot do."""
    records = {m: _record(m) for m in plan.models}
    drawing = [m for m, r in records.items() if r is not None and draws(_facts(r))]
    if not drawing:
        _check_text_run(plan)
        return
    writing = [m for m, r in records.items() if r is not None and m not in drawing]
    if writing:
        raise ConfigError(
            f"{_listed(drawing)} make images and {_listed(writing)} write text: one eval compares one kind.",
            hint="Evaluate the image models and the text models in two runs.",
        )
    prompted = [s.name for _, s in plan.arms if s.name != ZERO_SHOT]
    if prompted:
        raise ConfigError(
            f"{_listed(drawing)} make images: the strategy {prompted[0]} does not apply to them.",
            hint="An image model is sent the item's prompt alone; drop --strategy (zero-shot).",
        )
    wrong = [name for name in plan.metrics if name not in IMAGE_METRICS]
    if wrong:
        raise ConfigError(
            f"{_listed(wrong)} score text, and this run's models make images.",
            hint=f"Score pictures with {', '.join(IMAGE_METRICS)} (a judge must take images).",
        )
    image_params(plan)
    _check_prompts(plan)
    _check_judge(plan)


def _check_text_run(plan: Plan) -> None:
    """Image settings and clip_score mean nothing when no model makes images."""
    if plan.image_params:
        raise ConfigError(
            f"Image settings ({', '.join(plan.image_params)}) were given, and no model here makes images.",
            hint="Drop --size/--steps/--image-seed/--images-per-item, or evaluate image-generation models.",
        )
    if "clip_score" in plan.metrics:
        raise ConfigError(
            "clip_score scores generated pictures, and no model here makes images.",
            hint="Evaluate image-generation models (`modelatlas catalog search --task image-generation`).",
        )


def _check_prompts(plan: Plan) -> None:
    empty = next((item for item in plan.dataset.items if not item.prompt_text.strip()), None)
    if empty is not None:
        raise ConfigError(
            f"{plan.dataset.path}:{empty.line}: item {empty.id!r} has no prompt for the image models.",
            hint="Give every row its prompt in the input field (or name the column with --input-field).",
        )


def _check_judge(plan: Plan) -> None:
    """A judge of pictures must take them: refused before the run, naming the judge."""
    judged = [name for name, metric in plan.metrics.items() if metric.needs_judge]
    if not judged or not plan.judge:
        return
    record = _record(plan.judge)
    if record is not None and not sees(record):
        raise ConfigError(
            f"The judge {plan.judge} cannot see images, and {_listed(judged)} show it each picture.",
            hint="Pick a judge that takes images: a vision-language model such as gpt-4o, or a local "
            "image-text-to-text folder (`modelatlas catalog search --modality image`).",
        )


def sees(record: ModelRecord) -> bool:
    """Whether a model can be shown a picture: it answers in text and its facts take images."""
    return record.mode not in NOT_SEEING and "image" in _facts(record).accepts


# -- answering: the pictures, kept with the run -----------------------------------------------


async def draw(run_id: str, model: Model, index: int, item: Item, plan: Plan) -> Output:
    """An image model's answer: its pictures for the item's prompt, written with the run; a
    failure becomes ``Output.error``, never an exception."""
    prompt = item.prompt_text
    try:
        made = await model.generate_image(prompt, image_params(plan))
        stored = await asyncio.to_thread(keep, run_id, index, item.id, model.id, made.images)
    except ModelAtlasError as exc:
        return Output(error=exc.message, prompt=prompt)
    except OSError as exc:
        where = images_dir(run_id)
        return Output(error=f"cannot write the pictures into {where}: {exc.strerror}", prompt=prompt)
    return Output(
        usage=made.usage, latency_s=made.timing.latency_s, cached=made.cached, prompt=prompt, images=stored
    )


async def load_first(models: dict[str, Model], judge: Model | None) -> None:
    """Load an image run's models and judge one at a time, before any call. Two local pipelines
    (or a pipeline and a transformers judge) loading at once in two worker threads break: their
    weights are made on torch's meta device by a context that holds process-wide, and the second
    load finds the first one's modules empty ("Cannot copy out of meta tensor"). A model that
    fails to load is left to fail each of its items with the reason, as in any run."""
    if not any(draws(m.backend.facts(m.record)) for m in models.values()):
        return
    for model in [*models.values(), *([judge] if judge is not None else [])]:
        with contextlib.suppress(ModelAtlasError):
            await model.load()


def home() -> Path:
    from modelatlas.config import settings

    return settings().home


def images_dir(run_id: str) -> Path:
    return home() / "runs" / run_id / "images"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:60] or "_"


def keep(
    run_id: str, index: int, item_id: str, model_id: str, images: list[GeneratedImage]
) -> list[StoredImage]:
    """Write the pictures into the run's folder; what the stored output says of each."""
    from modelatlas.config import settings

    folder = settings().make_dirs(images_dir(run_id))
    kept = []
    for i, image in enumerate(images):
        name = f"{index}-{_slug(item_id)}-{_slug(model_id)}-{i}{image.suffix()}"
        image.save(folder / name)
        kept.append(
            StoredImage(
                path=(folder / name).relative_to(home()).as_posix(),
                sha256=hashlib.sha256(image.data).hexdigest(),
                media_type=image.media_type,
                width=image.width,
                height=image.height,
                seed=image.seed,
            )
        )
    return kept


def read_image(stored: StoredImage) -> bytes:
    """A kept picture's bytes, refused when the file is gone or no longer the one the run made."""
    path = home() / stored.path
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"The run's picture {path} cannot be read: {exc.strerror}.",
            hint="Pictures live in the home's runs/<run id>/images folder; was it moved or deleted?",
        ) from None
    if hashlib.sha256(data).hexdigest() != stored.sha256:
        raise ConfigError(f"The run's picture {path} changed since the run made it (its sha256 differs).")
    return data


def picture_of(run_id: str, item_id: str, model: str, n: int) -> tuple[bytes, str]:
    """The bytes and media type of the ``n``-th picture ``model`` made for an item of the run."""
    from sqlalchemy import select

    from modelatlas.store.db import session
    from modelatlas.store.schema import RunItem

    where = (RunItem.run_id == run_id) & (RunItem.item_id == item_id) & (RunItem.model_id == model)
    with session() as s:
        found = s.scalars(select(RunItem.output).where(where)).first()
    images = Output.model_validate(found).images if found else None
    if not images or not 0 <= n < len(images):
        raise ConfigError(f"{model} made no picture {n} for item {item_id!r} in run {run_id}.")
    return read_image(images[n]), images[n].media_type


def export_images(run_id: str, out: Path) -> int:
    """Copy the run's pictures into ``out/images`` with an ``index.jsonl`` (file, model, item,
    prompt, seed, sha256, one line a picture); returns how many were written."""
    from modelatlas.config import settings
    from modelatlas.evals.records import load_items

    results = [r for r in load_items(run_id) if r.output.images]
    if not results:
        return 0
    folder = settings().make_dirs(out / "images")
    lines = []
    for result in results:
        for stored in result.output.images or []:
            name = Path(stored.path).name
            (folder / name).write_bytes(read_image(stored))
            row = {"file": name, "model": result.model, "item_id": result.item_id}
            facts = stored.model_dump(include={"seed", "sha256", "width", "height"})
            lines.append(json.dumps(row | {"prompt": result.output.prompt} | facts))
    (folder / "index.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def image_arm(plan: Plan, model_id: str, record: ModelRecord) -> ArmEstimate:
    """A dry run's image arm: billed by the picture (items x images per item x Price.per_image)."""
    from modelatlas.evals.results import ArmEstimate

    pictures = plan.dataset.n * image_params(plan).n
    price = record.price
    cost = price.cost(0, 0, images=pictures) if price else 0.0
    return ArmEstimate(
        model=model_id,
        strategy=ZERO_SHOT,
        calls=plan.dataset.n,
        input_tokens=0,
        output_tokens_expected=0,
        output_tokens_max=0,
        cost_usd_expected=cost,
        cost_usd_max=cost,
        priced=bool(price and price.per_image) or record.hosting == "local",
        images=pictures,
    )
