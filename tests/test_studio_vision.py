"""Images in the studio, in a real browser (Chromium) against one studio subprocess for the module:
a picture uploaded, pasted or dropped into the playground reaches the tiny random vision model
(tests/tiny_vision.py) and a text-only model beside it is said not to take it; two image generators
over the tiny random diffusers pipeline (tests/tiny_diffusion.py) draw side by side; a blind image
battle's vote feeds the image leaderboard and never the text one.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys

import httpx
import pytest
from playwright.sync_api import expect

from modelatlas.catalog import user
from modelatlas.catalog.records import ModelRecord, Price
from tests.servers import free_port, stop, wait_for_http

VLM, VLM2, ECHO = "test/vlm", "test/vlm-again", "test/echo"
DRAW_A, DRAW_B = "img/two-steps", "img/three-steps"
PER_IMAGE = 0.02  # USD, set on DRAW_A's record
SIZE = 32  # pixels a side: the tiny pipeline's own

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def studio(request, tmp_path_factory):
    """One `modelatlas studio` for the module (it overrides conftest's per-test one), on a home
    holding the tiny vision model, a text-only echo model and two generators over one pipeline
    (2 and 3 denoising steps by default; the first priced per image). The studio starts while the
    tiny models are built: it reads the registered models per request."""
    home = tmp_path_factory.mktemp("vision-home")
    port = free_port()
    env = dict(os.environ, MODELATLAS_HOME=str(home))
    args = [sys.executable, "-m", "modelatlas", "studio", "--host", "127.0.0.1", "--port", str(port)]
    with open(home / "studio.log", "wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            register(home, request.getfixturevalue("tiny_vlm_path"), request.getfixturevalue("tiny_sd_path"))
            wait_for_http(f"http://127.0.0.1:{port}/favicon.ico", proc, timeout=60)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(proc)


def register(home, vlm_path: str, sd_path: str) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELATLAS_HOME", str(home))
        user.add(user.file_record(VLM, vlm_path, "chat"))
        user.add(user.file_record(VLM2, vlm_path, "chat"))
        user.add(ModelRecord(id=ECHO, backend="echo", mode="chat"))
        priced = user.image_record(DRAW_A, sd_path, price=Price(per_image=PER_IMAGE))
        user.add(priced.model_copy(update={"options": {"steps": 2}}))
        user.add(user.image_record(DRAW_B, sd_path).model_copy(update={"options": {"steps": 3}}))


@pytest.fixture(scope="module")
def red_png(tmp_path_factory):
    from PIL import Image

    path = tmp_path_factory.mktemp("pictures") / "red.png"
    Image.new("RGB", (SIZE, SIZE), (220, 30, 30)).save(path)
    return path


UNNAMED_CONTROLS = """(form) => Array.from(document.querySelectorAll(
  form + ' input, ' + form + ' select, ' + form + ' button, ' + form + ' textarea'))
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
  .map(el => el.outerHTML)"""

PASTE = """(url) => fetch(url).then(r => r.blob()).then(blob => {
  const data = new DataTransfer();
  data.items.add(new File([blob], 'pasted.png', {type: 'image/png'}));
  document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
})"""

DROP = """([box, name, type]) => { const data = new DataTransfer();
  data.items.add(new File(['not a picture'], name, {type: type}));
  const drop = new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true});
  document.getElementById(box).dispatchEvent(drop);
}"""


def data_url(path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def finished(page, panes: str, count: int) -> None:
    page.wait_for_function(
        f"document.querySelectorAll('{panes} .pane.finished').length === {count}", timeout=120_000
    )


def run_chat(page) -> dict[str, str]:
    page.get_by_role("button", name="Run").click()
    finished(page, "#panes", 2)
    vlm, echo = page.locator("#panes .pane").all()
    return {
        "answer": vlm.locator(".answer").inner_text(),
        "tokens": vlm.locator('[data-stat="output_tokens"]').inner_text(),
        "refusal": echo.get_by_role("alert").inner_text(),
    }


def test_an_uploaded_image_reaches_the_vision_model_and_the_text_model_is_not_asked(page, red_png):
    page.goto(f"/playground?models={VLM},{ECHO}")
    assert page.evaluate(UNNAMED_CONTROLS, "#playground-form") == []
    page.get_by_label("Temperature").fill("0")
    page.get_by_label("Max tokens").fill("6")
    page.locator("#pg-images").set_input_files(str(red_png))
    # Playwright's expect waits for the page to catch up (the thumbnail is drawn after the
    # file is read); is_visible() would answer at once, and did answer too soon under load.
    expect(page.get_by_role("img", name="Attached image 1: red.png")).to_be_visible()
    note = page.locator("#pg-image-note")
    expect(note).to_have_text(
        f"1 image attached. {ECHO} cannot take images, so it is not sent the prompt; "
        "the others get the images."
    )
    with_image = run_chat(page)
    assert with_image["answer"].strip(), with_image
    assert with_image["refusal"].startswith(f"{ECHO} cannot take images, so it was not asked.")
    # Removing the picture: the same greedy prompt without it is 16 image tokens shorter.
    page.get_by_role("button", name="Remove image 1 (red.png)").click()
    expect(note).to_be_hidden()
    page.get_by_label("Model 2", exact=True).select_option("")
    page.get_by_role("button", name="Run").click()
    finished(page, "#panes", 1)
    from tests.tiny_vision import IMAGE_TOKENS

    alone = page.locator('#panes [data-stat="output_tokens"]').inner_text()
    read = re.compile(r"(\d+) out · (\d+) in")
    out_with, in_with = map(int, read.fullmatch(with_image["tokens"]).groups())
    in_alone = int(read.fullmatch(alone).group(2))
    assert in_with - in_alone == IMAGE_TOKENS and out_with == 6
    # Paste and drop: a pasted picture is taken, a dropped text file is refused with its reason.
    page.evaluate(PASTE, data_url(red_png))
    expect(page.get_by_role("img", name="Attached image 1: pasted.png")).to_be_visible()
    expect(note).to_have_text("1 image attached: every chosen model takes images.")
    page.evaluate(DROP, ["pg-image-box", "notes.txt", "text/plain"])
    assert page.locator("#pg-image-error").inner_text() == (
        "notes.txt is not an image the models take (text/plain). Choose a PNG, JPEG, WebP or GIF."
    )
    assert page.locator("#pg-thumbs li").count() == 1


def test_the_api_refuses_images_it_cannot_use(studio, red_png):
    url = studio + "/api/playground/stream"
    body = {"models": [VLM], "prompt": "What is it?", "max_tokens": 2}
    too_many = httpx.post(url, json=body | {"images": [data_url(red_png)] * 5}, timeout=30)
    assert too_many.status_code == 400 and "at most 4 images, not 5" in too_many.json()["error"]
    big = "data:image/png;base64," + base64.b64encode(bytes(11 * 1024 * 1024)).decode()
    refused = httpx.post(url, json=body | {"images": [big]}, timeout=60)
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"].startswith("Image 1 is 11.0 MB; the playground takes at most 10 MB.")
    pdf = "data:application/pdf;base64," + base64.b64encode(b"%PDF").decode()
    not_image = httpx.post(url, json=body | {"images": [pdf]}, timeout=30)
    assert not_image.status_code == 400 and "Image 1 is not an image data URL" in not_image.json()["error"]
    asked = {"prompt": "Hi", "model_a": ECHO, "images": [data_url(red_png)]}
    battle = httpx.post(studio + "/api/arena/battle", json=asked, timeout=30)
    assert battle.status_code == 400
    assert battle.json()["error"].startswith(f"{ECHO} cannot take images, and this prompt carries some.")


def test_a_text_battle_with_an_image_draws_two_models_that_take_it(studio, red_png):
    asked = {"prompt": "What is it?", "images": [data_url(red_png)], "max_tokens": 3}
    events = read_events(httpx.post(studio + "/api/arena/battle", json=asked, timeout=120))
    assert [e for e in events if e["type"] == "error"] == []
    assert {e["index"] for e in events if e["type"] == "stats"} == {0, 1}
    vote = httpx.post(studio + "/api/arena/vote", json={"battle": events[0]["battle"], "winner": "tie"})
    assert vote.status_code == 200, vote.text
    assert {vote.json()["model_a"], vote.json()["model_b"]} == {VLM, VLM2}  # the text-only ones not drawn
    assert {r["model"] for r in vote.json()["leaderboard"]} == {VLM, VLM2}


def read_events(response) -> list[dict]:
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def test_two_image_generators_draw_side_by_side(page, studio):
    from PIL import Image

    body = {"models": [DRAW_A, DRAW_B], "prompt": "a red boat", "size": f"{SIZE}x{SIZE}", "seed": 5, "n": 2}
    events = read_events(httpx.post(studio + "/api/playground/image", json=body, timeout=120))
    pictures = {e["index"]: e for e in events if e["type"] == "images"}
    for index in (0, 1):
        progress = [
            (e["done"], e["total"]) for e in events if e["type"] == "progress" and e["index"] == index
        ]
        assert progress and progress[-1][0] == progress[-1][1], events
        shown = pictures[index]
        assert [image["seed"] for image in shown["images"]] == [5, 6]
        for image in shown["images"]:
            decoded = Image.open(io.BytesIO(base64.b64decode(image["url"].partition(",")[2])))
            assert decoded.size == (SIZE, SIZE) == (image["width"], image["height"])
    assert pictures[0]["cost_usd"] == pytest.approx(2 * PER_IMAGE) and pictures[1]["cost_usd"] == 0
    assert pictures[0]["images"][0]["url"] != pictures[0]["images"][1]["url"]  # seeds 5 and 6 differ
    assert events[-1] == {"type": "done"}

    page.goto(f"/playground?mode=image&models={DRAW_A},{DRAW_B}")
    assert page.get_by_role("link", name="Image generation").get_attribute("aria-current") == "page"
    assert page.evaluate(UNNAMED_CONTROLS, "#image-form") == []
    page.get_by_label("Size").select_option("")
    page.get_by_label("Seed").fill("11")
    page.get_by_label("Images per model").fill("2")
    page.get_by_label("Steps").fill("2")
    page.get_by_role("button", name="Generate").click()
    finished(page, "#ig-panes", 2)
    for pane, model, cost in zip(page.locator("#ig-panes .pane").all(), (DRAW_A, DRAW_B), ("$0.04", "$0")):
        assert pane.get_by_role("heading").inner_text() == model
        drawn = pane.get_by_role("img")
        assert drawn.count() == 2 and drawn.first.get_attribute("alt") == f"Image 1 of {model} (seed 11)"
        assert drawn.first.evaluate("img => img.naturalWidth") == SIZE
        assert pane.locator('[data-stat="seed"]').inner_text() == "11, 12"
        assert pane.locator('[data-stat="cost_usd"]').inner_text() == cost
        assert re.fullmatch(r"\d+\.\d\d s", pane.locator('[data-stat="latency_s"]').inner_text())
    expect(page.locator("#ig-status")).to_have_text(re.compile(r"^Done in"))  # set after the last pane
    page.set_viewport_size({"width": 360, "height": 740})  # a phone: the panes and pictures fit
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0


def test_an_image_battle_vote_updates_the_image_leaderboard_only(page, studio):
    battle = httpx.post(studio + "/api/arena/image/battle", json={"prompt": "a cat", "steps": 1}, timeout=120)
    assert DRAW_A not in battle.text and DRAW_B not in battle.text  # the names stay on the server
    page.goto("/arena?mode=image")
    assert page.get_by_role("link", name="Image battles").get_attribute("aria-current") == "page"
    assert page.locator("#arena-empty").inner_text() == "No image votes yet."
    assert page.evaluate(UNNAMED_CONTROLS, "#img-arena-form") == []
    page.get_by_text("Choose the models and settings").click()
    page.get_by_label("Steps").fill("1")
    page.get_by_role("button", name="Start battle").click()
    page.wait_for_function("!document.getElementById('img-arena-vote').disabled", timeout=120_000)
    assert page.locator("#img-arena-panes .pane img").count() == 2
    assert page.locator("[data-reveal]").all_inner_texts() == ["", ""]
    page.get_by_role("button", name="A is better").click()
    result = page.locator("#img-arena-result")
    result.wait_for()
    page.wait_for_function("document.getElementById('img-arena-result').textContent.length > 0")
    winner, loser = re.fullmatch(
        r"Vote stored \(A is better\)\. A was (\S+), B was (\S+)\.", result.inner_text()
    ).groups()
    assert {winner, loser} == {DRAW_A, DRAW_B}
    rows = page.locator("#arena-board tbody tr")
    assert rows.count() == 2 and rows.first.get_attribute("data-model") == winner
    assert rows.first.locator("td").nth(5).inner_text() == "1"  # wins
    board = httpx.get(studio + "/api/arena/image/leaderboard", timeout=30).json()["leaderboard"]
    assert [r["model"] for r in board] == [winner, loser] and board[0]["rating"] > board[1]["rating"]
    text_board = httpx.get(studio + "/api/arena/leaderboard", timeout=30).json()["leaderboard"]
    assert not {r["model"] for r in text_board} & {DRAW_A, DRAW_B}  # never ranked with text battles
