"""The diffusers backend (issue 14 item 5) on a tiny random Stable-Diffusion-style pipeline
(tests.tiny_diffusion): real diffusers, real PNGs, compared with diffusers' own pipeline call."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelatlas.catalog.discover import scan
from modelatlas.catalog.records import Price
from modelatlas.catalog.user import image_record
from modelatlas.errors import ConfigError, InvalidRequestError, MissingExtraError, ModelFileError
from modelatlas.loading import load_model
from modelatlas.types import GenerationParams
from tests.conftest import needs, run
from tests.tiny_diffusion import TINY_SD_SIZE, one_torch_thread  # noqa: F401  (autouse fixture)

pytestmark = [needs("diffusers"), needs("PIL")]

PROMPT = "a lighthouse at dusk"
STEPS = 2
PER_IMAGE = 0.04


def decode(data: bytes):
    from PIL import Image

    picture = Image.open(io.BytesIO(data))
    assert picture.format == "PNG"
    return picture


@pytest.fixture(scope="module")
def sd(tiny_sd_path):
    """The tiny pipeline as a registered-style record with a price by the image, loaded once."""
    record = image_record("test/tiny-sd", tiny_sd_path, price=Price(per_image=PER_IMAGE))
    model = load_model(record)
    run(model.load())
    yield model
    run(model.aclose())


@pytest.fixture(scope="module")
def drawn(sd):
    """The calls the tests look at, made once: two pictures at seed 7 (twice, with the progress
    reported), one at seed 8, one at seed 7 with a negative prompt, one at another size."""
    calls: list[tuple[int, int]] = []
    pair = run(
        sd.generate_image(PROMPT, n=2, steps=STEPS, seed=7, progress=lambda d, t: calls.append((d, t)))
    )
    again = run(sd.generate_image(PROMPT, n=2, steps=STEPS, seed=7))
    eight = run(sd.generate_image(PROMPT, steps=STEPS, seed=8))
    negative = run(sd.generate_image(PROMPT, steps=STEPS, seed=7, negative_prompt="fog, rain"))
    wide = run(sd.generate_image(PROMPT, steps=STEPS, seed=7, size="64x48"))
    return {"pair": pair, "again": again, "eight": eight, "negative": negative, "wide": wide, "calls": calls}


def test_pictures_are_pngs_of_the_asked_size(drawn):
    wide = drawn["wide"].images[0]
    assert decode(wide.data).size == (64, 48) == (wide.width, wide.height)
    for image in drawn["pair"].images:  # no size asked: the pipeline's own (unet sample x vae scale)
        assert decode(image.data).size == (TINY_SD_SIZE, TINY_SD_SIZE)
        assert image.media_type == "image/png" and image.suffix() == ".png"


def test_a_seed_repeats_and_picture_i_uses_seed_plus_i(drawn):
    pair, again, eight = drawn["pair"], drawn["again"], drawn["eight"]
    assert [i.data for i in pair.images] == [i.data for i in again.images]
    assert pair.images[0].data != pair.images[1].data  # n=2: two different pictures
    assert [i.seed for i in pair.images] == [7, 8]
    assert eight.images[0].data == pair.images[1].data  # seed 8 alone is picture 2 of seed 7


def test_the_negative_prompt_changes_the_picture(drawn):
    assert drawn["negative"].images[0].data != drawn["pair"].images[0].data


def test_progress_is_called_once_a_step_of_every_picture(drawn):
    total = STEPS * 2
    assert drawn["calls"] == [(done, total) for done in range(1, total + 1)]


def test_usage_counts_the_pictures_and_cost_is_by_the_picture(drawn):
    pair = drawn["pair"]
    assert pair.usage.images == 2
    assert pair.usage.cost_usd == pytest.approx(2 * PER_IMAGE)
    assert pair.model == "test/tiny-sd" and pair.prompt == PROMPT and pair.timing.latency_s > 0


def test_the_pixels_are_what_diffusers_itself_draws(drawn, tiny_sd_path):
    """The reference: the same pipeline called directly with the same seed and settings."""
    import numpy as np
    import torch
    from diffusers import AutoPipelineForText2Image

    pipe = AutoPipelineForText2Image.from_pretrained(tiny_sd_path, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(8)
    theirs = pipe(PROMPT, num_inference_steps=STEPS, generator=generator).images[0]
    ours = decode(drawn["pair"].images[1].data)
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))


def test_a_size_that_is_not_a_multiple_of_8_is_refused_clearly(sd):
    with pytest.raises(InvalidRequestError, match="multiple of 8") as caught:
        run(sd.generate_image(PROMPT, steps=1, size="60x32"))
    assert caught.value.param == "size" and "64x32" in (caught.value.hint or "")
    with pytest.raises(InvalidRequestError, match="WIDTHxHEIGHT"):
        run(sd.generate_image(PROMPT, steps=1, size="big"))


def test_an_image_model_refuses_to_write_text(sd):
    with pytest.raises(ConfigError, match="image-generation model"):
        run(sd.backend.generate("hello", GenerationParams()))


def test_facts_say_text_in_image_out_without_importing_torch(tiny_sd_path):
    """Facts are asked of every catalog record: they must not import torch or diffusers."""
    script = (
        "import json, sys\n"
        "from modelatlas.backends.declared import facts\n"
        "from modelatlas.catalog.user import image_record\n"
        f"f = facts(image_record('test/sd', {tiny_sd_path!r}))\n"
        "print(json.dumps({'caps': sorted(f.capabilities), 'accepts': sorted(f.accepts),\n"
        "  'outputs': sorted(f.outputs), 'local': f.local, 'memory': f.memory_bytes,\n"
        "  'format': f.file_format, 'heavy': [m for m in ('torch', 'diffusers') if m in sys.modules]}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    found = json.loads(done.stdout)
    weights = sum(f.stat().st_size for f in Path(tiny_sd_path).rglob("*") if f.is_file())
    assert found == {
        "caps": ["image_generation"],
        "accepts": ["text"],
        "outputs": ["image"],
        "local": True,
        "memory": weights,
        "format": "diffusers",
        "heavy": [],
    }


def test_a_missing_diffusers_names_the_pip_command(tiny_sd_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # as if it were not installed
    model = load_model(image_record("test/no-diffusers", tiny_sd_path))
    with pytest.raises(MissingExtraError, match=r"modelatlas\[vision\]"):
        run(model.generate_image(PROMPT, steps=1))


def test_a_folder_or_file_that_is_no_pipeline_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelFileError, match=r"model_index\.json"):
        image_record("test/not-sd", str(tmp_path))
    with pytest.raises(ModelFileError, match="safetensors"):
        image_record("test/not-sd", str(tmp_path / "config.json"))


def test_a_checkpoint_without_its_config_fails_with_the_offline_hint(tmp_path):
    broken = tmp_path / "model.safetensors"
    broken.write_bytes(b"not a checkpoint")
    model = load_model(image_record("test/broken", str(broken)))
    with pytest.raises(ModelFileError, match="cannot load") as caught:
        run(model.generate_image(PROMPT, steps=1))
    assert "config" in (caught.value.hint or "")


def test_the_scan_finds_the_pipeline_as_one_image_model(tiny_sd_path):
    found = scan([Path(tiny_sd_path).parent])
    assert len(found) == 1, [r.location for r in found]  # not its text_encoder/ as a text model
    record = found[0]
    assert (record.backend, record.mode, record.architecture) == (
        "diffusers",
        "image_generation",
        "diffusion",
    )
    assert record.tasks == ["image-generation"] and record.family == "StableDiffusionPipeline"
    assert (record.modalities.input, record.modalities.output) == (["text"], ["image"])
    assert record.location == str(Path(tiny_sd_path)) and record.memory_gb and record.runnable
    assert os.path.isfile(Path(record.location) / "model_index.json")


def test_pipelines_loading_at_once_all_draw(drawn, tiny_sd_path):
    """Three models of one folder load in three worker threads at the same time (a server or the
    studio's side-by-side page does this; unserialised, diffusers failed on torch's meta device
    with "Cannot copy out of meta tensor"); each draws the picture the loaded one drew."""
    import asyncio

    async def both():
        models = [load_model(image_record(f"test/sd-{i}", tiny_sd_path)) for i in range(3)]
        try:
            return await asyncio.gather(*(m.generate_image(PROMPT, steps=STEPS, seed=7) for m in models))
        finally:
            await asyncio.gather(*(m.aclose() for m in models))

    assert [r.images[0].data for r in run(both())] == [drawn["pair"].images[0].data] * 3


def test_records_that_draw_differently_have_different_cache_identities(tiny_sd_path):
    """The response cache keys pictures by the backend's identity: two records of one pipeline
    whose default steps (or device, or dtype) differ must not share cached pictures."""
    base = image_record("test/tiny-sd", tiny_sd_path)
    identities = {
        load_model(base.model_copy(update={"options": options})).identity
        for options in ({}, {"steps": 2}, {"steps": 3}, {"dtype": "bfloat16"}, {"device": "cuda"})
    }
    assert len(identities) == 5
    assert load_model(base).identity == load_model(base.model_copy()).identity
