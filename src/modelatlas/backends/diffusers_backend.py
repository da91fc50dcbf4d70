"""Text to image with a diffusers pipeline (Stable Diffusion and kin), in this process.

The model is either a Hugging Face pipeline folder (``model_index.json`` beside its parts),
loaded with ``AutoPipelineForText2Image``, or one ``.safetensors``/``.ckpt`` checkpoint loaded
with the pipeline class's ``from_single_file``. Both load with ``local_files_only``: a
checkpoint needs the model's diffusers config, which diffusers otherwise fetches from the Hub;
offline, point the ``config`` option at a pipeline folder of the same model (its JSON files are
enough).

torch and diffusers are imported on first use, so asking a record's facts costs nothing. A
call runs in a worker thread under the pipeline's lock: a pipeline's scheduler holds the state
of the run in progress, so two calls must not interleave. Image ``i`` of a call is made on its
own with a generator seeded ``seed + i``, so it is the same picture whether it was asked for
alone or with others; a call without a seed draws one and says which in each image's ``seed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import secrets
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from modelatlas.backends.base import Backend, BackendOptions, Progress, require
from modelatlas.backends.declared import BackendFacts, weights_bytes
from modelatlas.errors import ConfigError, InvalidRequestError, ModelFileError
from modelatlas.images import GeneratedImage, ImageParams, Images
from modelatlas.types import Completion, GenerationParams, Prompt, Usage

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
SIDE_MULTIPLE = 8  # Stable Diffusion's VAE works on 8-pixel blocks: each side a multiple of 8
_DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}


class DiffusersOptions(BackendOptions):
    device: Literal["cpu", "cuda", "mps"] = "cpu"
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"  # float32 on CPU: half is slow there
    steps: int = Field(30, ge=1, le=1000, description="denoising steps when a call asks for none")
    pipeline: str = Field(
        "StableDiffusionPipeline", description="single-file checkpoints: the diffusers pipeline class"
    )
    config: str | None = Field(
        None, description="single-file checkpoints: a pipeline folder (or Hub id) with the model's config"
    )
    threads: int | None = Field(None, ge=1, le=256, description="torch's CPU threads (process-wide)")


class DiffusersBackend(Backend):
    name = "diffusers"
    Options = DiffusersOptions
    capabilities = frozenset({"image_generation"})
    accepts = frozenset({"text"})

    @classmethod
    def facts(cls, record) -> BackendFacts:
        location = (record.location or "").lower()
        single = location.endswith(SINGLE_FILE_SUFFIXES)
        return cls.declare(
            record,
            local=True,
            max_connections=1,
            memory_bytes=weights_bytes(record),
            file_format=Path(location).suffix.lstrip(".") if single else "diffusers",
        )

    def __init__(self, model_id: str, location: str | None, options: DiffusersOptions):
        if not location:
            raise ConfigError(
                f"{model_id}: the diffusers backend needs a pipeline folder or a checkpoint file.",
                hint="Point the record's location at a folder holding model_index.json, "
                "or at a .safetensors/.ckpt file.",
            )
        super().__init__(model_id, location, options)
        self._pipe: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._pipe is None:
                location = Path(self.location or "").expanduser()
                self._pipe = _load_pipeline(self.model_id, location, self.options)

    def identity(self) -> str:
        from modelatlas.backends.identity import fingerprint

        o = self.options
        return f"diffusers:{o.dtype}:{o.pipeline}:{o.config}:{fingerprint(self.location)}"

    def default_size(self) -> tuple[int, int]:
        """The pipeline's own size (its UNet's sample size times the VAE's scale), loading it."""
        self.load()
        pipe = self._pipe
        side = int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)
        return side, side

    def step_seconds(self, params: ImageParams) -> float:
        """Seconds one denoising step takes here at ``params``' size and guidance, measured: a
        one-step run of the pipeline (prompt encoding included, picture decoding left out), so
        that `modelatlas run` can say how long the whole call will take before it starts."""
        torch = require("torch", extra="vision")
        if params.dimensions() is not None:
            check_size(*params.dimensions())  # a bad size fails before the pipeline loads
        self.load()
        width, height = params.dimensions() or self.default_size()
        extra = {"guidance_scale": params.guidance} if params.guidance is not None else {}
        if params.negative_prompt:
            extra["negative_prompt"] = params.negative_prompt
        seconds = 0.0
        with self._lock, torch.inference_mode():
            # The first run at a size pays torch's one-off set-up (several times a step on a
            # CPU), which the call itself will not: it is run, then a second one is timed.
            for _ in range(2):
                started = time.perf_counter()
                self._pipe(
                    "a picture",
                    width=width,
                    height=height,
                    num_inference_steps=1,
                    generator=torch.Generator(device=self.options.device).manual_seed(0),
                    output_type="latent",
                    **extra,
                )
                seconds = time.perf_counter() - started
        return seconds

    async def generate(self, prompt: Prompt, params: GenerationParams) -> Completion:
        raise ConfigError(
            f"{self.model_id} is an image-generation model: it draws pictures, it does not write text.",
            hint='Ask it for an image: `modelatlas run MODEL "a lighthouse at dusk" --out out.png`, '
            "or Model.generate_image().",
        )

    async def generate_image(
        self, prompt: str, params: ImageParams, progress: Progress | None = None
    ) -> Images:
        return await asyncio.to_thread(self._generate, prompt, params, progress)

    async def aclose(self) -> None:
        """Drop the pipeline: torch frees its weights when the last reference goes."""
        self._pipe = None

    # -- internals (worker thread) ---------------------------------------------------------

    def _generate(self, prompt: str, params: ImageParams, progress: Progress | None) -> Images:
        self.load()
        width, height = params.dimensions() or self.default_size()
        check_size(width, height)
        steps = params.steps or self.options.steps
        first = params.seed if params.seed is not None else secrets.randbelow(2**31)
        total, done = steps * params.n, [0]

        def on_step(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
            done[0] += 1
            if progress is not None:
                progress(done[0], total)
            return tensors

        images = []
        with self._lock:
            for i in range(params.n):
                picture = self._draw(prompt, params, width, height, steps, first + i, on_step)
                images.append(_png(picture, first + i))
        return Images(images=images, model=self.model_id, prompt=prompt, usage=Usage(images=len(images)))

    def _draw(self, prompt, params: ImageParams, width, height, steps, seed, on_step) -> Any:
        torch = require("torch", extra="vision")
        extra: dict[str, Any] = {}
        if params.guidance is not None:
            extra["guidance_scale"] = params.guidance
        if params.negative_prompt:
            extra["negative_prompt"] = params.negative_prompt
        generator = torch.Generator(device=self.options.device).manual_seed(seed)
        with torch.inference_mode():
            out = self._pipe(
                prompt,
                width=width,
                height=height,
                num_inference_steps=steps,
                generator=generator,
                callback_on_step_end=on_step,
                output_type="pil",
                **extra,
            )
        return out.images[0]


def check_size(width: int, height: int) -> None:
    """Refuse a size the pipeline cannot draw, saying which sizes it can."""
    if width % SIDE_MULTIPLE or height % SIDE_MULTIPLE:
        near = f"{_round8(width)}x{_round8(height)}"
        raise InvalidRequestError(
            f"size {width}x{height} cannot be drawn: each side must be a multiple of {SIDE_MULTIPLE} pixels.",
            hint=f"Try {near}.",
            param="size",
        )


def _round8(side: int) -> int:
    return max(SIDE_MULTIPLE, round(side / SIDE_MULTIPLE) * SIDE_MULTIPLE)


def _png(picture: Any, seed: int) -> GeneratedImage:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return GeneratedImage(
        data=buffer.getvalue(), media_type="image/png", width=picture.width, height=picture.height, seed=seed
    )


def _load_pipeline(model_id: str, location: Path, options: DiffusersOptions) -> Any:
    """The pipeline at ``location``, on the options' device and dtype; a clear error otherwise."""
    diffusers = require("diffusers", extra="vision")
    torch = require("torch", extra="vision")
    if options.threads:
        torch.set_num_threads(options.threads)
    dtype = getattr(torch, _DTYPES[options.dtype])
    with _quiet():
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
