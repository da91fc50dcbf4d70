"""Evaluating image generators on a prompt dataset (issue 14 item 7): the pictures kept with the
run and exported, clip_score against torchmetrics' on the same pictures, prompts and CLIP, vision
judges, the dry run's price by the picture, and the plans that are refused.

The generators are two records of the tiny random diffusers pipeline (tests.tiny_diffusion), one
denoising 1 step and the other 2, so their pictures differ; the CLIP is tests.tiny_clip and the
judge the tiny random LLaVA (tests.tiny_vision). All weights are random: the scores mean nothing
about the pictures, the code paths and the arithmetic are real.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelatlas.catalog import user
from modelatlas.catalog.records import ModelRecord, Price
from modelatlas.cli.main import app
from tests.conftest import needs

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

pytestmark = [needs("PIL"), needs("diffusers"), needs("torchmetrics")]

runner = CliRunner()
PROMPTS = [
    {"id": "p1", "input": "a lighthouse at dusk"},
    {"id": "p2", "input": "a red apple on a table"},
    {"id": "p3", "input": "the moon over the sea"},
]
MODELS = ["test/sd-one", "test/sd-two"]


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory) -> str:
    from tests.tiny_clip import build_tiny_clip

    return str(build_tiny_clip(tmp_path_factory.mktemp("tiny-clip") / "clip"))


@pytest.fixture
def prompts(tmp_path) -> str:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in PROMPTS), encoding="utf-8")
    return str(path)


@pytest.fixture
def generators(tiny_sd_path) -> list[str]:
    """Two image records of the tiny pipeline: 1 step in float32, 2 steps in bfloat16 (so they
    draw different pictures even where a run sets the steps for both); the second priced."""
    one = user.image_record(MODELS[0], tiny_sd_path).model_copy(update={"options": {"steps": 1}})
    two = user.image_record(MODELS[1], tiny_sd_path, price=Price(per_image=0.04))
    user.add(one)
    user.add(two.model_copy(update={"options": {"steps": 2, "dtype": "bfloat16"}}))
    return MODELS


def _eval(*args: str):
    return runner.invoke(app, ["eval", *args])


def _json_summary(run_id: str) -> str:
    shown = runner.invoke(app, ["runs", "show", run_id, "--json"])
    assert shown.exit_code == 0, shown.output
    return shown.stdout


def _decoded(data: bytes):
    from PIL import Image

    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture


def _torchmetrics_clip(clip_path: str):
    """torchmetrics' clip_score over our CLIP folder, loaded on its own. torchmetrics 1.9 takes a
    callable for a local model; it expects get_*_features to return the embedding tensor (as
    transformers 4 did), while transformers 5 returns an output whose pooler_output is that
    tensor, so the model it is given hands that tensor over and does nothing else."""
    import torch
    from torchmetrics.functional.multimodal import clip_score
    from transformers import CLIPModel, CLIPProcessor

    class Features(torch.nn.Module):
        def __init__(self, clip):
            super().__init__()
            self.clip, self.config = clip, clip.config

        def get_image_features(self, pixel_values):
            return self.clip.get_image_features(pixel_values=pixel_values).pooler_output

        def get_text_features(self, input_ids, attention_mask):
            found = self.clip.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
            return found.pooler_output

    model = Features(CLIPModel.from_pretrained(clip_path, local_files_only=True).eval())
    processor = CLIPProcessor.from_pretrained(clip_path, local_files_only=True)

    def score(picture, prompt: str) -> float:
        import numpy as np

        pixels = torch.from_numpy(np.array(picture.convert("RGB"))).permute(2, 0, 1)  # C, H, W uint8
        with torch.no_grad():
            return float(clip_score(pixels, prompt, model_name_or_path=lambda: (model, processor)))

    return score


def test_an_eval_of_two_generators_keeps_exports_and_clip_scores_every_picture(
    prompts, generators, clip_path, tmp_path
):
    from modelatlas.config import settings
    from modelatlas.evals.records import load_items

    done = _eval(
        prompts, "-m", MODELS[0], "-m", MODELS[1], "--metric", "clip_score", "--clip-model", clip_path
    )
    assert done.exit_code == 0, done.output
    run_id = done.output.split("Run ")[1].split(":")[0].strip()
    results = load_items(run_id)
    assert len(results) == len(PROMPTS) * len(MODELS)
    home = settings().home
    reference = _torchmetrics_clip(clip_path)
    for result in results:
        (stored,) = result.output.images
        assert stored.path.startswith(f"runs/{run_id}/images/") and result.output.prompt
        data = (home / stored.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == stored.sha256
        picture = _decoded(data)
        assert picture.size == (stored.width, stored.height) == (32, 32)
        ours = result.scores["clip_score"]
        assert ours.ok, ours.error
        assert ours.value == pytest.approx(reference(picture, result.output.prompt), abs=1e-4)
    values = [r.scores["clip_score"].value for r in results]
    assert any(v > 0 for v in values), values  # not every cosine clamped to 0: the comparison compares
    for arm in json.loads(_json_summary(run_id))["models"]:
        mine = [r.scores["clip_score"].value for r in results if r.model == arm["model_id"]]
        assert arm["metrics"]["clip_score"]["mean"] == pytest.approx(sum(mine) / len(mine))
    by_model = {m: {r.item_id: r.output.images[0].sha256 for r in results if r.model == m} for m in MODELS}
    assert all(by_model[MODELS[0]][i] != by_model[MODELS[1]][i] for i in by_model[MODELS[0]])  # 1 vs 2 steps

    shown = runner.invoke(app, ["runs", "show", run_id])
    assert shown.exit_code == 0 and "Images: 6 in" in shown.output, shown.output
    _the_run_page_shows_the_pictures(run_id, results)
    out = tmp_path / "exported"
    exported = runner.invoke(app, ["runs", "export", run_id, "--format", "jsonl", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    files = sorted((out / "images").glob("*.png"))
    assert len(files) == len(PROMPTS) * len(MODELS)
    assert all(_decoded(f.read_bytes()).size == (32, 32) for f in files)
    index = [json.loads(line) for line in (out / "images" / "index.jsonl").read_text().splitlines()]
    assert {row["file"] for row in index} == {f.name for f in files}
    assert all(
        hashlib.sha256((out / "images" / r["file"]).read_bytes()).hexdigest() == r["sha256"] for r in index
    )
    rows = [json.loads(line) for line in (out / "export.jsonl").read_text().splitlines()]
    assert sorted(Path(i["path"]).name for r in rows for i in r["images"]) == [f.name for f in files]


def _the_run_page_shows_the_pictures(run_id: str, results) -> None:
    from urllib.parse import quote

    from starlette.testclient import TestClient

    from modelatlas.config import settings
    from modelatlas.studio.app import create_app

    with TestClient(create_app(), base_url="http://127.0.0.1:8765") as client:
        page = client.get(f"/runs/{run_id}")
        assert page.status_code == 200
        for r in results:
            src = f"/runs/{run_id}/picture?item={r.item_id}&amp;model={quote(r.model)}&amp;n=0"
            assert f'<img class="thumb" src="{src}"' in page.text, src
        first = results[0]
        ask = {"item": first.item_id, "model": first.model, "n": 0}
        picture = client.get(f"/runs/{run_id}/picture", params=ask)
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
        assert picture.content == (settings().home / first.output.images[0].path).read_bytes()
        assert client.get(f"/runs/{run_id}/picture", params={**ask, "n": 1}).status_code == 404


def test_the_dry_run_prices_image_models_by_the_picture(prompts, generators):
    done = _eval(prompts, "-m", MODELS[0], "-m", MODELS[1], "--metric", "judge_score", "--judge", MODELS[0])
    assert done.exit_code == 2 and "cannot see images" in done.output  # an image model judges nothing
    args = [prompts, "-m", MODELS[0], "-m", MODELS[1], "--images-per-item", "2", "--size", "32x32"]
    done = _eval(
        *args, "--metric", "clip_score", "--clip-model", prompts.rsplit("/", 1)[0], "--dry-run", "--json"
    )
    assert done.exit_code == 2 and "holds no config.json" in done.output  # the folder is checked first
    shown = _eval(*args, "--metric", "judge_score", "--judge", "openai/gpt-4o", "--dry-run", "--json")
    assert shown.exit_code == 0, shown.output
    arms = {a["model"]: a for a in json.loads(shown.stdout)["arms"]}
    assert arms[MODELS[1]]["images"] == 6 and arms[MODELS[1]]["calls"] == 3  # 3 prompts x 2 pictures
    assert arms[MODELS[1]]["cost_usd_expected"] == pytest.approx(6 * 0.04) == arms[MODELS[1]]["cost_usd_max"]
    assert arms[MODELS[0]]["priced"] and arms[MODELS[0]]["cost_usd_max"] == 0.0  # local, no price per hour
    table = _eval(*args, "--metric", "judge_score", "--judge", "openai/gpt-4o", "--dry-run")
    assert table.exit_code == 0 and "6 images" in table.output, table.output


def test_plans_an_image_run_cannot_carry_are_refused_before_any_call(prompts, generators, clip_path):
    user.add(ModelRecord(id="test/echo", backend="echo"))
    clip = ["--metric", "clip_score", "--clip-model", clip_path]
    one = ["-m", MODELS[0]]
    refusals = {
        "test/sd-one make images and test/echo write text": [*one, "-m", "test/echo", *clip],
        "clip_score needs a CLIP model on disk": [*one, "--metric", "clip_score"],
        "The judge test/echo cannot see images": [*one, "--metric", "judge_score", "--judge", "test/echo"],
        "exact_match score text, and this run's models make images": [*one, "--metric", "exact_match"],
        "the strategy one-shot does not apply to them": [*one, "--strategy", "one-shot", *clip],
        "The image setting size cannot be 'big'": [*one, "--size", "big", *clip],
        "Image settings (steps) were given, and no model here makes images": [
            *("-m", "test/echo", "--steps", "4", "--metric", "judge_score", "--judge", "test/echo")
        ],
        "clip_score scores generated pictures, and no model here makes images": ["-m", "test/echo", *clip],
    }
    for message, args in refusals.items():
        done = _eval(prompts, *args)
        said = " ".join(done.output.split())
        assert done.exit_code == 2 and message in said, (message, done.output)
        if "CLIP model on disk" in message:
            assert "Pass a local CLIP folder" in said and "Nothing is downloaded" in said


def test_a_vision_judge_is_shown_each_picture_and_its_unparseable_answers_are_counted(
    prompts, generators, tiny_vlm_path
):
    """The tiny LLaVA has random weights, so its answers rarely hold a "Score: N" line: each
    verdict is either a score from 1 to 5 or an error that says the answer was unparseable (and
    keeps it), never a crash or a dropped item; the summary counts them."""
    from modelatlas import evals
    from modelatlas.evals.metrics.image import first_picture
    from modelatlas.evals.plan import make_plan
    from modelatlas.evals.records import load_items, load_pairs

    user.add(user.file_record("test/vlm", tiny_vlm_path))
    plan = make_plan(
        prompts,
        MODELS,
        metrics=["judge_score", "judge_pairwise"],
        judge="test/vlm",
        metric_options={"judge_max_tokens": 4},
        image_params={"steps": 1},
    )
    result = asyncio.run(evals.evaluate(plan))
    items, pairs = load_items(result.run.id), load_pairs(result.run.id)
    assert len(items) == 6 and len(pairs) == 3
    for verdict in [*(r.scores["judge_score"] for r in items), *(p.score for p in pairs)]:
        if verdict.ok:
            assert verdict.data["judge"] == "test/vlm"
        else:
            assert verdict.error.startswith("unparseable judge answer"), verdict.error
            assert verdict.data["answers"]  # what the judge said, kept
    red, blue = asyncio.run(_judged_solid_pictures(result.run.id))
    assert red != blue  # the same prompt, another picture, another answer: the judge sees it
    assert result.run.params["image"] == {"steps": 1}  # stored: a resume makes the same pictures
    for arm in result.summary.models:
        judged = arm.metrics["judge_score"]
        assert judged.n + judged.errors == 3
    shown = first_picture(items[0].output)
    assert (
        shown.data[:8] == b"\x89PNG\r\n\x1a\n"
        and shown.fingerprint() != first_picture(items[1].output).fingerprint()
    )


async def _judged_solid_pictures(run_id: str) -> list[str]:
    """The judge's first answer for the same prompt with a red and with a blue picture."""
    from PIL import Image

    from modelatlas.evals.image_plan import keep
    from modelatlas.evals.metrics.base import Context
    from modelatlas.evals.metrics.judge import JudgeScore
    from modelatlas.evals.types import Item, Output
    from modelatlas.images import GeneratedImage
    from modelatlas.loading import load_model

    def solid(colour: tuple[int, int, int]) -> GeneratedImage:
        out = io.BytesIO()
        Image.new("RGB", (32, 32), colour).save(out, "PNG")
        return GeneratedImage(data=out.getvalue(), width=32, height=32)

    judge, metric, item = (
        load_model("test/vlm"),
        JudgeScore(judge_max_tokens=8),
        Item(id="x", input="a red square"),
    )
    answers = []
    try:
        for i, colour in enumerate(((255, 0, 0), (0, 0, 255))):
            output = Output(images=keep(run_id, 9 + i, "solid", "test/colour", [solid(colour)]))
            answers.append((await metric.score(item, output, Context(judge=judge))).data["answers"][0])
    finally:
        await judge.aclose()
    return answers


def test_a_pipeline_that_cannot_load_fails_its_items_with_the_reason(prompts, tmp_path):
    broken = tmp_path / "broken-sd"
    broken.mkdir()
    (broken / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    user.add(user.image_record("test/broken", str(broken)))
    clip = tmp_path / "clip"  # never loaded: no item has a picture to score
    clip.mkdir()
    (clip / "config.json").write_text("{}")
    done = _eval(prompts, "-m", "test/broken", "--metric", "clip_score", "--clip-model", str(clip))
    assert done.exit_code == 1, done.output
    said = " ".join(done.output.split())
    assert "Every answer in run" in said and "The first error (test/broken)" in said
