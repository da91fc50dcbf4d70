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
import io
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from modelatlas.backends.base import Backend, BackendOptions, Progress, require
from modelatlas.backends.declared import BackendFacts, weights_bytes
from modelatlas.backends.diffusers_load import SINGLE_FILE_SUFFIXES, load_pipeline
from modelatlas.errors import ConfigError, InvalidRequestError
from modelatlas.images import GeneratedImage, ImageParams, Images
from modelatlas.types import Completion, GenerationParams, Prompt, Usage

SIDE_MULTIPLE = 8  # Stable Diffusion's VAE works on 8-pixel blocks: each side a multiple of 8


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
        self.options: DiffusersOptions = options
        self.location: str = location
        self._pipe: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._pipe is None:
                location = Path(self.location or "").expanduser()
                self._pipe = load_pipeline(self.model_id, location, self.options)

    def identity(self) -> str:
        from modelatlas.backends.identity import fingerprint

        o = self.options
        # Every option that changes the pictures: the default steps too (a call that asks for
        # none draws with them), and the device (CUDA and CPU kernels differ in their last bits).
        made = f"{o.device}:{o.dtype}:{o.steps}:{o.pipeline}:{o.config}"
        return f"diffusers:{made}:{fingerprint(self.location)}"

    def default_size(self) -> tuple[int, int]:
        """The pipeline's own size, loading it: its UNet's sample size (a transformer-based
        pipeline's ``default_sample_size``) times the VAE's scale; 512 where it says neither."""
        self.load()
        pipe = self._pipe
        unet = getattr(pipe, "unet", None)
        sample = unet.config.sample_size if unet is not None else getattr(pipe, "default_sample_size", None)
        if isinstance(sample, list | tuple):
            sample = sample[0]
        scale = getattr(pipe, "vae_scale_factor", None)
        side = int(sample) * int(scale) if sample and scale else 512
        return side, side

    def step_seconds(self, params: ImageParams) -> float:
        """Seconds one denoising step takes here at ``params``' size and guidance, measured: a
        one-step run of the pipeline (prompt encoding included, picture decoding left out), so
        that `modelatlas run` can say how long the whole call will take before it starts."""
        torch = require("torch", extra="vision")
        asked = params.dimensions()
        if asked is not None:
            check_size(*asked)  # a bad size fails before the pipeline loads
        self.load()
        width, height = asked or self.default_size()
        extra: dict[str, Any] = {} if params.guidance is None else {"guidance_scale": params.guidance}
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

        def on_step(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
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

    def _draw(
        self, prompt: str, params: ImageParams, width: int, height: int, steps: int, seed: int, on_step: Any
    ) -> Any:
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
