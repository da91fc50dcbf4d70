"""`modelatlas run MODEL PROMPT --image FILE` (issue 14 item 2): pictures before the text, to the
tiny random LLaVA (tests.tiny_vision) and, as data URLs or the user's URLs, to a hosted model
behind an OpenAI-compatible server on 127.0.0.1; every wrong pairing exits 2 before any call."""

from __future__ import annotations

import base64
import io
import json
import os

import pytest
from typer.testing import CliRunner

from modelatlas.cli.main import app
from tests.conftest import needs
from tests.test_backend_openai import fake_server

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

pytestmark = needs("PIL")
QUESTION = "What is in this picture?"


def cli(*args: str, stdin: str | None = None):
    return CliRunner().invoke(app, list(args), input=stdin)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("pictures")
    for name, colour in (("red.png", (255, 0, 0)), ("blue.jpg", (0, 0, 255))):
        out = io.BytesIO()
        Image.new("RGB", (40, 30), colour).save(out, "PNG" if name.endswith(".png") else "JPEG")
        (folder / name).write_bytes(out.getvalue())
    (folder / "notes.png").write_text("not a picture, whatever its name says")
    return folder


@pytest.fixture
def vlm(tiny_vlm_path) -> str:
    added = cli("models", "add", "local/tiny-vlm", "--path", tiny_vlm_path)
    assert added.exit_code == 0, added.output
    return "local/tiny-vlm"


@needs("torch")
@needs("transformers")
def test_the_pictures_reach_a_local_vision_model(vlm, pictures):
    from tests.tiny_vision import IMAGE_TOKENS

    red = str(pictures / "red.png")
    one = cli("run", vlm, QUESTION, "--image", red, "--max-tokens", "4", "--json")
    assert one.exit_code == 0, one.output
    two = cli(
        "run",
        vlm,
        QUESTION,
        "--image",
        red,
        "--image",
        str(pictures / "blue.jpg"),
        "--max-tokens",
        "4",
        "--json",
    )
    assert two.exit_code == 0, two.output
    one, two = json.loads(one.stdout), json.loads(two.stdout)
    assert one["text"] and one["usage"]["output_tokens"] == 4
    assert two["usage"]["input_tokens"] - one["usage"]["input_tokens"] == IMAGE_TOKENS  # the second picture


def test_a_text_only_model_is_refused_with_where_to_look(pictures):
    for model in ("local/smollm2-135m-instruct", "local/whisper-base"):
        result = cli("run", model, QUESTION, "--image", str(pictures / "red.png"))
        assert result.exit_code == 2, result.output
        assert f"{model} takes no images" in result.output
        assert "modelatlas catalog search --modality image" in result.output
        assert "Traceback" not in result.output


BAD = [
    ("gone.png", "cannot read the file (No such file or directory)"),
    ("notes.png", "is not an image (not PNG, JPEG, GIF, WebP, BMP or TIFF)"),
    (".", "is a folder, not an image file"),
    ("https://example.invalid/cat.png", "a URL is passed on only to hosted models"),
]


@pytest.mark.parametrize(("given", "says"), BAD)
def test_a_missing_or_unreadable_picture_exits_2(vlm, pictures, given, says):
    path = given if given.startswith("https") else str(pictures / given)
    result = cli("run", vlm, QUESTION, "--image", path)
    assert result.exit_code == 2, result.output
    assert says in result.output and "Traceback" not in result.output


def test_a_hosted_model_gets_files_as_data_urls_and_urls_as_given(pictures):
    url = "https://example.invalid/cat.png"  # .invalid never resolves: it is not fetched here
    with fake_server() as (fake, base_url):
        added = cli("models", "add", "acme/vision", "--base-url", base_url, "--model", "vision")
        assert added.exit_code == 0, added.output
        args = ["--image", str(pictures / "blue.jpg"), "--image", url, "--system", "Be brief.", "--json"]
        result = cli("run", "acme/vision", "-", *args, stdin=QUESTION)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["text"] == "Hello there"
    (request,) = fake.requests
    system, user = request.body["messages"]
    assert system == {"role": "system", "content": "Be brief."}
    picture, linked, text = user["content"]
    prefix = "data:image/jpeg;base64,"
    assert picture["type"] == "image_url" and picture["image_url"]["url"].startswith(prefix)
    assert (
        base64.b64decode(picture["image_url"]["url"][len(prefix) :]) == (pictures / "blue.jpg").read_bytes()
    )
    assert linked == {"type": "image_url", "image_url": {"url": url}}
    assert text == {"type": "text", "text": QUESTION}
