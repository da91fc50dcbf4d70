"""The Python facade: what ``import modelatlas as ma`` offers, in the manner of ``llm.get_model()``.

Each name is the function a command calls, under a short name, so a script and the CLI cannot
drift apart: ``get_model`` is :func:`modelatlas.loading.load_model` (what `modelatlas run` opens),
``evaluate`` builds the plan and runs it as `modelatlas eval` does, ``list_models`` is what
`modelatlas models list` lists, and ``ma.catalog.search`` is `modelatlas catalog search`.

This module sits with the interfaces (it imports evals, the catalog and the loader); the package
``__init__`` loads it on first attribute access, so ``import modelatlas`` stays cheap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelatlas.errors import ModelAtlasError
from modelatlas.loading import load_model

if TYPE_CHECKING:
    from modelatlas.evals.datasets import Fields
    from modelatlas.evals.plan import Plan
    from modelatlas.evals.results import RunResult
    from modelatlas.images import Images
    from modelatlas.parts import AudioPart
    from modelatlas.records import ModelRecord
    from modelatlas.transcripts import Transcript

__all__ = [
    "EventLoopRunningError",
    "aevaluate",
    "agenerate_image",
    "atranscribe",
    "evaluate",
    "generate_image",
    "get_model",
    "list_models",
    "transcribe",
]

# One function, two names: the id is resolved through the catalog (an unknown id raises
# UnknownModelError with "did you mean"), the backend built, and the Model wrapper returned.
get_model = load_model


class EventLoopRunningError(ModelAtlasError, RuntimeError):
    """A blocking facade call was made from inside a running event loop."""

    exit_code = 2


def list_models() -> list[ModelRecord]:
    """The models that can run now: installed bundled ones and the ones added with `models add`."""
    from modelatlas.catalog import runnable_records

    return runnable_records()


async def aevaluate(
    dataset: str | Path,
    models: str | Sequence[str],
    *,
    strategies: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    judge: str | None = None,
    limit: int | None = None,
    examples: str | Path | None = None,
    system: str | None = None,
    template: str | Path | None = None,
    max_tokens: int = 128,
    temperature: float = 0.0,
    concurrency: int = 4,
    price_per_hour: float | None = None,
    pattern: str | None = None,
    k: int | None = None,
    fields: Fields | None = None,
    name: str | None = None,
    samples_per_item: int = 1,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Run ``dataset`` through ``models`` and ``strategies``, score it, store it, summarise it.

    ``dataset`` is a file or folder, or a built-in dataset's name ("humaneval"; a path that
    exists always wins). The other arguments are `modelatlas eval`'s options with the same
    defaults (``strategies``: "zero-shot", "few-shot:3", "rag:KB"...; ``metrics``: chosen from
    the dataset when None; ``examples``: the few-shot pool file; ``pattern`` and ``k``: the
    regex and top-k metrics; ``samples_per_item``: answers per item, for pass_at_k).
    The run is stored like a CLI run (`modelatlas runs show RUN_ID` reads it)."""
    asked = dict(locals())  # the arguments above, first statement on purpose: nothing else yet
    del asked["progress"]
    from modelatlas import evals

    plan = await asyncio.to_thread(_plan, **asked)  # reads the dataset (a pool, a template): off the loop
    return await evals.evaluate(plan, progress)


def _plan(
    dataset: str | Path,
    models: str | Sequence[str],
    strategies: Sequence[str] | None,
    metrics: Sequence[str] | None,
    examples: str | Path | None,
    template: str | Path | None,
    pattern: str | None,
    k: int | None,
    **settings: Any,
) -> Plan:
    """make_plan given the arguments as the eval command gives it its options (``settings``
    are make_plan's own: judge, limit, fields, name, system, max_tokens, temperature, ...)."""
    from modelatlas.evals.plan import given_metric_options, make_plan

    return make_plan(
        str(dataset),
        [models] if isinstance(models, str) else list(models),
        strategies=list(strategies) if strategies else None,
        metrics=list(metrics) if metrics else None,
        pool_path=str(examples) if examples else None,
        template_path=str(template) if template else None,
        arms=None,
        metric_options=given_metric_options(pattern, k),
        **settings,
    )


def evaluate(dataset: str | Path, models: str | Sequence[str], **options: Any) -> RunResult:
    """:func:`aevaluate` for scripts: the same arguments, run to the end in a new event loop.

    Inside a running event loop (a notebook, an async application) it refuses instead of
    blocking that loop: ``await modelatlas.aevaluate(...)`` there."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop running: the normal case for a script
        return asyncio.run(aevaluate(dataset, models, **options))
    raise EventLoopRunningError(
        "modelatlas.evaluate() blocks until the run ends, and an event loop is already running "
        "here (a notebook or an async application).",
        hint="Use `await modelatlas.aevaluate(...)` instead: it takes the same arguments.",
    )


async def atranscribe(
    model: str | ModelRecord, audio: AudioPart | str | Path | bytes, **options: Any
) -> Transcript:
    """The transcript of ``audio`` (a path, WAV/MP3/... bytes or an audio part) by the speech
    model ``model``, as `modelatlas run MODEL FILE` makes it: the model is opened, used once and
    closed. ``options`` are TranscribeParams' fields (language, prompt, temperature,
    word_timestamps). To transcribe many files, keep one model open with :func:`get_model`."""
    async with load_model(model) as opened:
        return await opened.transcribe(audio, **options)


def transcribe(model: str | ModelRecord, audio: AudioPart | str | Path | bytes, **options: Any) -> Transcript:
    """:func:`atranscribe` for scripts, run in a new event loop (inside a running loop it refuses:
    ``await modelatlas.atranscribe(...)`` there)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(atranscribe(model, audio, **options))
    raise EventLoopRunningError(
        "modelatlas.transcribe() blocks until the transcript is done, and an event loop is already "
        "running here (a notebook or an async application).",
        hint="Use `await modelatlas.atranscribe(...)` instead: it takes the same arguments.",
    )


async def agenerate_image(
    model: str | ModelRecord, prompt: str, progress: Callable[[int, int], None] | None = None, **options: Any
) -> Images:
    """Pictures of ``prompt`` by the image model ``model``, as `modelatlas run MODEL PROMPT --out`
    makes them: the model is opened, used once and closed. ``options`` are ImageParams' fields
    (size, n, steps, guidance, negative_prompt, seed); ``progress(done, total)`` reports
    denoising steps from a worker thread. To draw many, keep one model open with :func:`get_model`."""
    async with load_model(model) as opened:
        return await opened.generate_image(prompt, progress=progress, **options)


def generate_image(
    model: str | ModelRecord, prompt: str, progress: Callable[[int, int], None] | None = None, **options: Any
) -> Images:
    """:func:`agenerate_image` for scripts, run in a new event loop (inside a running loop it
    refuses: ``await modelatlas.agenerate_image(...)`` there)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(agenerate_image(model, prompt, progress, **options))
    raise EventLoopRunningError(
        "modelatlas.generate_image() blocks until the pictures are done, and an event loop is already "
        "running here (a notebook or an async application).",
        hint="Use `await modelatlas.agenerate_image(...)` instead: it takes the same arguments.",
    )
