"""Loading a diffusers pipeline for the diffusers backend: a pipeline folder or one checkpoint.

Kept apart from the backend so that each stays small; nothing here runs until a model loads
(diffusers and torch come in through :func:`require`, so a missing package names its pip command).
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelatlas.backends.base import require
from modelatlas.errors import ConfigError, ModelFileError

if TYPE_CHECKING:
    from modelatlas.backends.diffusers_backend import DiffusersOptions

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
# One pipeline loads at a time in this process: two loading at once in two threads broke on
# torch's meta device (diffusers builds the parts empty, then fills them), and the progress-bar
# switches _quiet turns are process-wide too.
_LOADING = threading.Lock()


def load_pipeline(model_id: str, location: Path, options: DiffusersOptions) -> Any:
    """The pipeline at ``location``, on the options' device and dtype; a clear error otherwise."""
    diffusers = require("diffusers", extra="vision")
    torch = require("torch", extra="vision")
    if options.threads:
        torch.set_num_threads(options.threads)
    dtype = getattr(torch, options.dtype)  # float32, float16 or bfloat16 (the Literal allows no other)
    with _LOADING, _quiet():
        pipe = _from_location(diffusers, model_id, location, options, dtype)
    pipe.set_progress_bar_config(disable=True)  # our caller shows progress through the callback
    return pipe.to(options.device)


def _from_location(diffusers: Any, model_id: str, location: Path, options: DiffusersOptions, dtype: Any):
    try:
        if location.is_dir():
            _check_folder(model_id, location)
            pipe = diffusers.AutoPipelineForText2Image.from_pretrained(
                str(location), torch_dtype=dtype, local_files_only=True
            )
        elif location.is_file() and location.suffix.lower() in SINGLE_FILE_SUFFIXES:
            pipe = _single_file(diffusers, model_id, location, options, dtype)
        else:
            raise ModelFileError(
                f"{model_id}: {location} is neither a pipeline folder nor a .safetensors/.ckpt checkpoint.",
                hint="Point the location at a folder holding model_index.json, or at a checkpoint file.",
            )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(
            f"{model_id}: diffusers cannot load {location}: {_reason(exc)}",
            hint="A single checkpoint needs its model's config offline: set the `config` option to a "
            "pipeline folder of the same model. A folder needs every part model_index.json names.",
        ) from None
    return pipe


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No "Loading pipeline components" bars from diffusers and transformers while loading:
    they would break into `modelatlas run`'s own progress line (restored afterwards); and no
    warning that ``torch_dtype`` is renamed ``dtype`` (diffusers 0.30 knows only the old name)."""
    from diffusers.utils import logging as diffusers_logging

    # torch_dtype is what every diffusers since 0.30 takes; the newest warn that it is renamed.
    warnings.filterwarnings("ignore", message=".*torch_dtype. is deprecated", category=FutureWarning)
    bars = [diffusers_logging]
    with contextlib.suppress(ImportError):
        from transformers.utils import logging as transformers_logging

        bars.append(transformers_logging)
    were_on = [bar.is_progress_bar_enabled() for bar in bars]
    for bar in bars:
        bar.disable_progress_bar()
    try:
        yield
    finally:
        for bar, on in zip(bars, were_on, strict=True):
            if on:
                bar.enable_progress_bar()


def _check_folder(model_id: str, folder: Path) -> None:
    if not (folder / "model_index.json").is_file():
        raise ModelFileError(
            f"{model_id}: {folder} has no model_index.json, so it is not a diffusers pipeline folder.",
            hint="Point the location at the folder a pipeline's save_pretrained() wrote "
            "(model_index.json beside unet/, vae/, text_encoder/...).",
        )


def _single_file(diffusers: Any, model_id: str, path: Path, options: DiffusersOptions, dtype: Any) -> Any:
    cls = getattr(diffusers, options.pipeline, None)
    if cls is None or not hasattr(cls, "from_single_file"):
        raise ConfigError(
            f"{model_id}: diffusers has no pipeline {options.pipeline!r} that loads a single file.",
            hint="Set the `pipeline` option to StableDiffusionPipeline, StableDiffusionXLPipeline, ...",
        )
    extra = {"config": options.config} if options.config else {}
    return cls.from_single_file(str(path), torch_dtype=dtype, local_files_only=True, **extra)


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
