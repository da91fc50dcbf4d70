"""`modelatlas run` for image models: PROMPT is what to draw, ``--out`` where to write it.

An image-generation model (mode ``image_generation``, or a backend that can do nothing else)
draws ``--n`` pictures of PROMPT. A local pipeline first times one denoising step at the asked
size, so the command can say how long the call will take before it starts, then shows a
progress bar of the steps. With ``--n 1`` the picture goes to ``--out`` as named; with more,
``out.png`` becomes ``out-1.png``, ``out-2.png``... ``--json`` prints the paths, seeds, sizes,
latency, the estimate and the cost. Each wrong pairing exits 2: a text model given ``--out``
or another image option, an image model without ``--out``, a size it cannot draw.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from modelatlas.cli.common import console, escape, print_json
from modelatlas.errors import InvalidRequestError

# What the --out suffix may be: the image is converted with Pillow when the model made another.
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
# The run options that only an image model takes, by their flag.
FLAGS = {
    "out": "--out",
    "n": "--n",
    "size": "--size",
    "seed": "--seed",
    "steps": "--steps",
    "guidance": "--guidance",
    "negative_prompt": "--negative-prompt",
}


def makes_images(llm) -> bool:
    """Whether the model is an image-generation one: its mode, or facts that allow nothing else."""
    from modelatlas.backends.declared import facts

    return llm.record.mode == "image_generation" or facts(llm.record).capabilities == {"image_generation"}


def refuse_image_options(llm, options: dict[str, Any]) -> None:
    """A text (or speech) model given --out or another image option: a clear exit 2."""
    given = [FLAGS[name] for name, value in options.items() if value is not None]
    if given:
        raise InvalidRequestError(
            f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for image-generation models; "
            f"{llm.id} is a {llm.record.mode} model: it writes text, not pictures.",
            hint="Leave them out, or pick an image model "
            "(`modelatlas catalog search --task image-generation`).",
        )


def image_command(llm, prompt: str, options: dict[str, Any], system: str | None, json_out: bool) -> None:
    """Draw PROMPT with ``llm``, write the pictures and print where they went (or the JSON)."""
    text = sys.stdin.read().strip() if prompt == "-" else prompt
    out = _out_path(llm.id, options.pop("out"))
    if system:
        raise InvalidRequestError(
            f"--system is for text models; {llm.id} draws pictures from the prompt alone.",
            hint="Leave --system out: put everything in the prompt (and --negative-prompt).",
        )
    params = image_params(options)
    err = console(stderr=True)
    estimate = _estimate(llm, params, err)
    result = asyncio.run(_draw(llm, text, params, err))
    made = zip(result.images, targets(out, len(result.images)), strict=True)
    paths = [_write(image, target) for image, target in made]
    summary = _summary(result, paths, estimate)
    if json_out:
        print_json(summary)
        return
    for path in paths:
        sys.stdout.write(f"{path}\n")
    sys.stdout.flush()
    _line(summary, err)


def image_params(options: dict[str, Any]):
    """The run's ImageParams; a bad value exits 2 naming its flag."""
    from modelatlas.images import ImageParams

    values = {name: value for name, value in options.items() if value is not None or name == "seed"}
    try:
        return ImageParams(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "size"
        message = str(err.get("ctx", {}).get("error") or err["msg"]).removeprefix("Value error, ")
        raise InvalidRequestError(
            f"{FLAGS.get(name, name)}: {message}.",
            hint="For example: --size 512x512 --n 2 --steps 20 --guidance 7.5 --seed 7.",
            param=name,
        ) from None


def targets(out: Path, n: int) -> list[Path]:
    """Where each picture goes: ``out`` itself for one, ``out-1``, ``out-2``... for more."""
    if n == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(1, n + 1)]


def _out_path(model_id: str, out: str | None) -> Path:
    if not out:
        raise InvalidRequestError(
            f"{model_id} draws pictures: say where to write them with --out.",
            hint='For example: `modelatlas run MODEL "a lighthouse at dusk" --out lighthouse.png`.',
        )
    path = Path(out).expanduser()
    if path.suffix.lower() not in FORMATS:
        raise InvalidRequestError(
            f"--out {out}: the file name must end in {', '.join(FORMATS)}.",
            hint=f"For example --out {path.stem or 'picture'}.png.",
        )
    if path.is_dir():
        raise InvalidRequestError(f"--out {out} is a folder.", hint="Give a file name, such as out.png.")
    return path


def _estimate(llm, params, err) -> float | None:
    """Seconds the call should take, from one measured denoising step (local pipelines; None
    for a model that cannot time a step here). Printed before the call starts."""
    timer = getattr(llm.backend, "step_seconds", None)
    if timer is None:
        return None
    with err.status(f"Loading {escape(llm.id)} and timing one step…"):
        step = timer(params)
    steps = params.steps or llm.backend.options.steps
    total = step * steps * params.n
    err.print(
        f"[dim]Estimate: about {total:.1f}s ({step:.2f}s a step × {_count(steps, 'step')} × "
        f"{_count(params.n, 'image')})[/]"
    )
    return total


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


async def _draw(llm, prompt: str, params, err):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("Denoising"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("steps", total=None)

        def progress(done: int, total: int) -> None:  # from the backend's worker thread
            bar.update(task, completed=done, total=total)

        try:
            return await llm.generate_image(prompt, params, progress=progress)
        finally:
            await llm.aclose()


def _write(image, target: Path) -> Path:
    """The picture at ``target``, converted with Pillow when the suffix asks another format."""
    wanted = FORMATS[target.suffix.lower()]
    if image.suffix() == target.suffix.lower() or (wanted == "JPEG" and image.suffix() == ".jpg"):
        return image.save(target)
    import io

    from PIL import Image

    with Image.open(io.BytesIO(image.data)) as picture:
        target.parent.mkdir(parents=True, exist_ok=True)
        (picture.convert("RGB") if wanted == "JPEG" else picture).save(target, format=wanted)
    return target


def _summary(result, paths: list[Path], estimate: float | None) -> dict[str, Any]:
    return {
        "model": result.model,
        "prompt": result.prompt,
        "images": [
            {"path": str(path), "seed": image.seed, "width": image.width, "height": image.height}
            for image, path in zip(result.images, paths, strict=True)
        ],
        "latency_s": round(result.timing.latency_s, 4),
        "estimate_s": None if estimate is None else round(estimate, 4),
        "usage": {"images": result.usage.images},
        "cost_usd": result.usage.cost_usd,
        "cached": result.cached,
    }


def _line(summary: dict[str, Any], err) -> None:
    first = summary["images"][0]
    seeds = ", ".join(str(i["seed"]) for i in summary["images"] if i["seed"] is not None) or "none"
    err.print(
        f"[dim]{escape(summary['model'])} · {len(summary['images'])} × {first['width']}x{first['height']} · "
        f"seed {seeds} · {summary['latency_s']:.2f}s · ${summary['cost_usd']:.6f}[/]"
    )
