"""Images through `modelatlas serve`, with the official openai SDK and a key: POST
/v1/images/generations on the tiny random diffusers pipeline (b64_json and url answers, the url's
expiry, metering per image, OpenAI's error envelope for bad input), chat with image_url parts on
the tiny random VLM (usage counting the image tokens as transformers' processor expands them;
http URLs refused without --allow-image-urls, fetched from a real 127.0.0.1 server with it; a
hosted model gets them as given either way: tests/test_serve_content_parts.py), the
openai backend's images.generate against the server, and hosted OpenAI when a key is set."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import needs, run
from tests.servers import free_port, python_server

pytestmark = [needs("torch"), needs("diffusers"), needs("transformers"), needs("PIL"), needs("openai")]

PRICE = 0.01  # USD per image, given to the tiny pipeline's record
TTL_S = 60
MAX_IMAGE_MB = 0.05  # 51 KB: the served "large" picture is over it
QUESTION = "what is in this picture?"


def png(color: tuple[int, int, int], size: tuple[int, int] = (40, 40)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def _cli(home: Path, *args: str) -> str:
    """A modelatlas command run in this process on ``home``."""
    from typer.testing import CliRunner

    from modelatlas.cli.main import app

    done = CliRunner().invoke(app, list(args), env={"MODELATLAS_HOME": str(home)})
    assert done.exit_code == 0, done.output
    return done.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_sd_path, tiny_vlm_path):
    """One `modelatlas serve` (keys on, --allow-image-urls) serving the tiny pipeline and the tiny
    VLM: its /v1 URL, a key's secret and its home."""
    folder = tmp_path_factory.mktemp("serve-images")
    home = folder / "home"
    env = {**os.environ, "MODELATLAS_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("MODELATLAS_DATABASE_URL", None)
    sd = ["models", "add", "my/sd", "--path", tiny_sd_path, "--mode", "image_generation"]
    _cli(home, *sd, "--price-image", str(PRICE))
    _cli(home, "models", "add", "my/vlm", "--path", tiny_vlm_path)
    secret = json.loads(_cli(home, "keys", "create", "client", "--json"))["secret"]
    port = free_port()
    args = ["-m", "modelatlas", "serve", "--port", str(port), "--model", "my/sd", "--model", "my/vlm"]
    args += ["--allow-image-urls", "--max-image-mb", str(MAX_IMAGE_MB), "--image-url-ttl", str(TTL_S)]
    with python_server(args, port, ready_path="/health", log_path=str(folder / "server.log"), env=env):
        yield {"url": f"http://127.0.0.1:{port}/v1", "key": secret, "home": home}


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    with OpenAI(base_url=server["url"], api_key=server["key"], max_retries=0, timeout=120) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def pictures():
    """A real HTTP server on 127.0.0.1 with a picture, a page that is not one, a picture over
    the server's --max-image-mb, and a redirect loop: its base URL."""
    small = png((255, 0, 0))
    large = os.urandom(int(MAX_IMAGE_MB * 2**20) + 4096)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            routes = {
                "/red.png": (200, "image/png", small),
                "/moved.png": (302, "image/png", b""),
                "/page.html": (200, "text/html", b"<p>not a picture</p>"),
                "/large.png": (200, "image/png", large),
                "/loop.png": (302, "image/png", b""),
            }
            status, kind, body = routes.get(self.path, (404, "text/plain", b"no"))
            self.send_response(status)
            self.send_header("Content-Type", kind)
            if status == 302:
                self.send_header("Location", "/red.png" if self.path == "/moved.png" else "/loop.png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", small
    finally:
        httpd.shutdown()
        httpd.server_close()


def _decoded(b64: str):
    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(b64)))


def test_images_generate_b64_json_is_the_pipelines_own_picture(client, tiny_sd_path):
    answer = client.images.generate(
        model="my/sd",
        prompt="a red square",
        n=2,
        size="32x32",
        response_format="b64_json",
        extra_body={"seed": 7, "steps": 1},
    )
    assert len(answer.data) == 2 and answer.created > 0
    first, second = (_decoded(d.b64_json) for d in answer.data)
    assert first.size == (32, 32) and first.format == "PNG"
    assert first.tobytes() != second.tobytes()  # image i uses seed + i
    assert answer.usage.model_extra["images"] == 2 and answer.size == "32x32"
    # The reference: diffusers itself, on the same folder, prompt, size, steps and seed.
    import numpy as np
    import torch
    from diffusers import AutoPipelineForText2Image

    pipe = AutoPipelineForText2Image.from_pretrained(tiny_sd_path, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator("cpu").manual_seed(7)
    theirs = pipe("a red square", width=32, height=32, num_inference_steps=1, generator=generator).images[0]
    difference = np.asarray(theirs.convert("RGB"), dtype=np.int16) - np.asarray(
        first.convert("RGB"), np.int16
    )
    assert np.abs(difference).max() <= 1  # PNG-encoded 8-bit pixels of the same computation


def test_url_answers_point_at_a_short_lived_file(client, server):
    answer = client.images.generate(
        model="my/sd", prompt="a lighthouse", size="32x32", response_format="url", extra_body={"steps": 1}
    )
    url = answer.data[0].url
    assert url.startswith(server["url"] + "/images/files/") and answer.data[0].b64_json is None
    fetched = httpx.get(url, timeout=30)  # no key: the URL is the secret
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"
    assert _decoded(base64.b64encode(fetched.content).decode()).size == (32, 32)
    assert 0 < int(fetched.headers["cache-control"].rsplit("=", 1)[1]) <= TTL_S
    # Its time up (the file's age is what counts, so age it rather than wait): 404, and gone.
    files = server["home"] / "cache" / "served-images"
    path = files / url.rsplit("/", 1)[1]
    old = time.time() - TTL_S - 1
    os.utime(path, (old, old))
    gone = httpx.get(url, timeout=30)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert not path.exists()
    guessed = httpx.get(server["url"] + "/images/files/..%2Fmodelatlas.db", timeout=30)
    assert guessed.status_code == 404


def test_usage_is_metered_per_image(client, server):
    before = _usage(server)
    client.images.generate(model="my/sd", prompt="three boats", n=3, size="32x32", extra_body={"steps": 1})
    after = _usage(server)
    assert after["images"] - before["images"] == 3
    assert after["cost_usd"] - before["cost_usd"] == pytest.approx(3 * PRICE)
    assert after["requests"] - before["requests"] == 1
    table = _cli(server["home"], "usage", "--by", "model")
    assert "images" in table and "my/sd" in table


def _usage(server, model: str = "my/sd") -> dict:
    """``model``'s row of `modelatlas usage --by model --json` (zeros before any), once the
    server's /v1/usage (the key's own) has agreed on it: asking the server first also stores
    the records still queued, which the server writes within a quarter of a second."""
    auth = {"Authorization": f"Bearer {server['key']}"}
    served = httpx.get(server["url"] + "/usage?by=model", headers=auth, timeout=30).json()["data"]
    rows = json.loads(_cli(server["home"], "usage", "--by", "model", "--json"))
    zero = {"images": 0, "cost_usd": 0.0, "requests": 0, "input_tokens": 0}
    row = {**zero, **next((r for r in rows if r["model"] == model), {})}
    theirs = {**zero, **next((g for g in served if g["group"] == model), {})}
    assert (row["images"], row["input_tokens"]) == (theirs["images"], theirs["input_tokens"])
    return row


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"n": 11}, "n", "from 1 to 10"),
        ({"size": "big"}, "size", "WIDTHxHEIGHT"),
        ({"prompt": "  "}, "prompt", "empty"),
        ({"response_format": "png"}, "response_format", "b64_json, url"),
        ({"model": "my/vlm"}, "model", "does not make images"),
        ({"style": "vivid"}, "style", "not supported"),
    ],
)
def test_bad_image_requests_get_openais_error_envelope(client, fields, param, words):
    import openai

    request = {"model": "my/sd", "prompt": "a cat", "size": "32x32", "extra_body": {"steps": 1}, **fields}
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(**request)
    error = caught.value.body
    assert caught.value.status_code == 400 and error["param"] == param and words in error["message"]


def test_an_image_model_on_the_chat_route_names_the_images_endpoint(client):
    import openai

    assert {m.id for m in client.models.list()} == {"my/sd", "my/vlm"}

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="my/sd", messages=[{"role": "user", "content": "hi"}])
    assert "/v1/images/generations" in caught.value.body["message"]


def _ask(client, url: str):
    content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": QUESTION}]
    return client.chat.completions.create(
        model="my/vlm", messages=[{"role": "user", "content": content}], max_tokens=4, temperature=0
    )


def _expanded_prompt_tokens(tiny_vlm_path: str, picture: bytes) -> int:
    """transformers' own processor on the same chat and picture: the prompt's tokens."""
    from PIL import Image
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_vlm_path)
    entries = [{"type": "image"}, {"type": "text", "text": QUESTION}]
    text = processor.apply_chat_template([{"role": "user", "content": entries}], add_generation_prompt=True)
    image = Image.open(io.BytesIO(picture))
    return int(processor(text=[text], images=[image], return_tensors="pt")["input_ids"].shape[1])


def test_chat_with_a_data_url_counts_the_image_tokens(client, server, tiny_vlm_path):
    from tests.tiny_vision import IMAGE_TOKENS

    picture = png((0, 0, 255))
    before = _usage(server, "my/vlm")
    answer = _ask(client, data_url(picture))
    assert answer.choices[0].message.content and answer.usage.completion_tokens == 4
    assert answer.usage.prompt_tokens == _expanded_prompt_tokens(tiny_vlm_path, picture)
    assert answer.usage.prompt_tokens > IMAGE_TOKENS
    # What the server meters is what it answered: the image tokens included.
    metered = _usage(server, "my/vlm")["input_tokens"] - before["input_tokens"]
    assert metered == answer.usage.prompt_tokens


def test_http_image_urls_are_fetched_with_the_flag(client, pictures, tiny_vlm_path):
    import openai

    base, red = pictures
    by_url = _ask(client, base + "/moved.png")  # one redirect, then the picture
    by_data = _ask(client, data_url(red))
    assert by_url.choices[0].message.content == by_data.choices[0].message.content
    assert (
        by_url.usage.prompt_tokens
        == by_data.usage.prompt_tokens
        == _expanded_prompt_tokens(tiny_vlm_path, red)
    )
    for path, words in [
        ("/page.html", "not an image"),
        ("/large.png", f"limit of {MAX_IMAGE_MB:g} MB"),
        ("/loop.png", "redirects more than"),
        ("/missing.png", "HTTP 404"),
    ]:
        with pytest.raises(openai.BadRequestError) as caught:
            _ask(client, base + path)
        body = caught.value.body
        assert words in body["message"] and body["param"] == "messages[0].content[0].image_url.url"


def test_http_image_urls_are_refused_without_the_flag(tiny_vlm_path, pictures):
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from modelatlas.cli.main import app as cli
    from modelatlas.serve import create_app

    assert CliRunner().invoke(cli, ["models", "add", "my/vlm", "--path", tiny_vlm_path]).exit_code == 0
    app = create_app(["my/vlm"], auth=False)
    content = [
        {"type": "image_url", "image_url": {"url": pictures[0] + "/red.png"}},
        {"type": "text", "text": "hi"},
    ]
    body = {"model": "my/vlm", "messages": [{"role": "user", "content": content}]}
    with TestClient(app, base_url="http://127.0.0.1") as http:
        answer = http.post("/v1/chat/completions", json=body)
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert "does not fetch image URLs" in error["message"] and "--allow-image-urls" in error["message"]
        assert http.get("/health").json()["loaded"] == []  # refused before the model was loaded


def test_the_openai_backend_makes_images_through_the_server(server):
    """The gateway's code path (backends/openai_images.py) against a server that speaks
    images.generate: seeds and steps go in the body, the pictures come back with their seeds."""
    from modelatlas.backends.openai_compat import OpenAIBackend
    from modelatlas.images import ImageParams

    os.environ["SERVEIMG_TEST_KEY"] = server["key"]
    try:
        options = OpenAIBackend.parse_options(
            {"base_url": server["url"], "model": "my/sd", "api_key_env": "SERVEIMG_TEST_KEY"}
        )
        backend = OpenAIBackend("srv/sd", None, options)
        made = run(backend.generate_image("a green field", ImageParams(n=2, size="32x32", seed=5, steps=1)))
    finally:
        del os.environ["SERVEIMG_TEST_KEY"]
    assert [i.seed for i in made.images] == [5, 6] and made.usage.images == 2
    assert {(i.width, i.height, i.media_type) for i in made.images} == {(32, 32, "image/png")}


def test_the_openai_backend_sends_an_image_part_to_the_servers_vision_model(
    server, client, tiny_vlm_path, tmp_path, monkeypatch
):
    """The gateway's chat path: a modelatlas record of the openai backend pointed at the server,
    a picture given by path, sent as a data URL of its bytes. It gets what the SDK gets for the
    same picture, and the image tokens in its usage."""
    from modelatlas.catalog.records import ModelRecord
    from modelatlas.loading import load_model
    from modelatlas.parts import ImagePart, TextPart
    from modelatlas.types import Message

    picture = png((0, 128, 0))
    (tmp_path / "green.png").write_bytes(picture)
    monkeypatch.setenv("SERVEIMG_TEST_KEY", server["key"])
    options = {"base_url": server["url"], "model": "my/vlm", "api_key_env": "SERVEIMG_TEST_KEY"}
    record = ModelRecord(id="srv/vlm", backend="openai", options=options)
    prompt = [Message.user([ImagePart(path=tmp_path / "green.png"), TextPart(text=QUESTION)])]

    async def ask():
        async with load_model(record) as model:
            return await model.generate(prompt, max_tokens=4, temperature=0)

    ours = run(ask())
    theirs = _ask(client, data_url(picture))
    assert ours.text == theirs.choices[0].message.content
    assert (
        ours.usage.input_tokens
        == theirs.usage.prompt_tokens
        == _expanded_prompt_tokens(tiny_vlm_path, picture)
    )


@pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="needs OPENAI_API_KEY (hosted OpenAI)")
def test_hosted_openai_images_generate():
    from modelatlas.loading import load_model

    async def make():
        async with load_model("openai/gpt-image-1-mini") as model:
            return await model.generate_image("a small red circle", quality="low", size="1024x1024")

    made = run(make())
    assert made.usage.images == 1 and made.images[0].width == 1024 and made.images[0].data
