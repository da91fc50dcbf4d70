"""`modelatlas run` on an image model, `models add --mode image_generation` and
`ma.generate_image` (issue 14 item 6's CLI part), on the tiny random pipeline of
tests.tiny_diffusion; and the clear exit 2 of each wrong pairing."""

from __future__ import annotations

import io
import json

import pytest
from typer.testing import CliRunner

import modelatlas as ma
from modelatlas.cli.main import app
from tests.conftest import needs
from tests.tiny_diffusion import TINY_SD_SIZE, one_torch_thread  # noqa: F401  (autouse fixture)

pytestmark = [needs("diffusers"), needs("PIL")]

SD = "test/tiny-sd"
SMOL = "local/smollm2-135m-instruct"
PER_IMAGE = 0.02
cli = CliRunner()


@pytest.fixture
def added(tiny_sd_path):
    """The tiny pipeline registered in this test's home, priced by the picture, as a user would."""
    args = ["models", "add", SD, "--path", tiny_sd_path, "--mode", "image_generation"]
    result = cli.invoke(app, [*args, "--price-image", str(PER_IMAGE)])
    assert result.exit_code == 0, result.output
    assert f"Added {SD} (diffusers)" in result.stdout
    return SD


def size_of(path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as picture:
        return picture.size


def test_models_add_registers_an_image_model(added):
    result = cli.invoke(app, ["models", "list", "--json"])
    record = next(r for r in json.loads(result.stdout) if r["id"] == SD)
    assert (record["backend"], record["mode"], record["architecture"]) == (
        "diffusers",
        "image_generation",
        "diffusion",
    )
    assert record["modalities"] == {"input": ["text"], "output": ["image"]}
    assert record["price"]["per_image"] == PER_IMAGE


def test_run_json_writes_numbered_files_with_seeds_sizes_latency_and_cost(added, tmp_path):
    out = tmp_path / "pics" / "out.png"
    args = ["run", SD, "a lighthouse at dusk", "--out", str(out), "--n", "2", "--size", "48x32"]
    result = cli.invoke(app, [*args, "--seed", "7", "--steps", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    paths = [tmp_path / "pics" / "out-1.png", tmp_path / "pics" / "out-2.png"]
    assert [i["path"] for i in summary["images"]] == [str(p) for p in paths]
    assert [i["seed"] for i in summary["images"]] == [7, 8]
    assert all(size_of(p) == (48, 32) == (i["width"], i["height"]) for p, i in zip(paths, summary["images"]))
    assert paths[0].read_bytes() != paths[1].read_bytes()
    assert summary["usage"] == {"images": 2} and summary["cost_usd"] == pytest.approx(2 * PER_IMAGE)
    assert summary["latency_s"] > 0 and summary["estimate_s"] > 0
    assert "Estimate: about" in result.stderr and "× 2 steps × 2 images" in result.stderr


def test_run_writes_one_picture_where_out_says_and_repeats_a_seed(added, tmp_path):
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    for target in (first, second):
        result = cli.invoke(
            app, ["run", SD, "a red boat", "--out", str(target), "--seed", "3", "--steps", "2"]
        )
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == str(target)  # the path on stdout, the summary on stderr
        assert "Estimate: about" in result.stderr and "seed 3" in result.stderr
    assert first.read_bytes() == second.read_bytes()
    assert size_of(first) == (TINY_SD_SIZE, TINY_SD_SIZE)


def test_run_takes_a_pipeline_folder_path_and_converts_to_the_out_suffix(tiny_sd_path, tmp_path):
    target = tmp_path / "pic.jpg"
    result = cli.invoke(app, ["run", tiny_sd_path, "a red boat", "--out", str(target), "--steps", "1"])
    assert result.exit_code == 0, result.output
    assert "1 step × 1 image" in result.stderr
    assert target.read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG


def test_models_add_knows_a_pipeline_folder_without_mode(tiny_sd_path, tmp_path):
    result = cli.invoke(app, ["models", "add", "my/sd", "--path", tiny_sd_path])
    assert result.exit_code == 0, result.output
    listed = json.loads(cli.invoke(app, ["models", "list", "--json"]).stdout)
    assert next(r["mode"] for r in listed if r["id"] == "my/sd") == "image_generation"
    (tmp_path / "config.json").write_text("{}")
    args = ["models", "add", "my/not-sd", "--path", str(tmp_path), "--mode", "image_generation"]
    result = cli.invoke(app, args)
    assert result.exit_code == 2 and "neither a diffusers pipeline folder" in result.stderr


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--size", "60x32"], "each side must be a multiple of 8"),
        (["--size", "wide"], "--size: size must be WIDTHxHEIGHT"),
        (["--steps", "0"], "--steps"),
        (["--n", "11"], "--n"),
    ],
)
def test_bad_image_options_exit_2_with_a_clear_message(added, tmp_path, extra, said):
    result = cli.invoke(app, ["run", SD, "a boat", "--out", str(tmp_path / "x.png"), *extra])
    assert result.exit_code == 2
    assert said in result.output
    assert not (tmp_path / "x.png").exists()


def test_an_image_model_without_out_or_with_a_strange_suffix_exits_2(added, tmp_path):
    result = cli.invoke(app, ["run", SD, "a boat"])
    assert result.exit_code == 2 and "--out" in result.stderr
    result = cli.invoke(app, ["run", SD, "a boat", "--out", str(tmp_path / "x.gif")])
    assert result.exit_code == 2 and "must end in .png" in result.stderr


def test_a_text_model_given_out_exits_2():
    result = cli.invoke(app, ["run", SMOL, "hi", "--out", "x.png", "--n", "2"])
    assert result.exit_code == 2
    assert "--out, --n are for image-generation models" in result.stderr
    assert f"{SMOL} is a chat model" in result.stderr


def test_the_facade_draws_like_the_cli(added):
    steps: list[tuple[int, int]] = []
    drawn = ma.generate_image(SD, "a lighthouse", steps=2, seed=7, progress=lambda d, t: steps.append((d, t)))
    assert steps == [(1, 2), (2, 2)]
    assert drawn.usage.images == 1 and drawn.usage.cost_usd == pytest.approx(PER_IMAGE)
    from PIL import Image

    assert Image.open(io.BytesIO(drawn.images[0].data)).size == (TINY_SD_SIZE, TINY_SD_SIZE)
