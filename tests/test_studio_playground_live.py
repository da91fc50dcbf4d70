"""The playground's live figures on the bundled SmolLM2, in the studio started as a subprocess:
the stream's load and finish events over HTTP, and in a real browser the time to first token and
tokens/s while the reply streams, the load shown on the first request only, the truncation flag
and its "ask again", the kind labels, and where focus and the announcements go.

Each test starts its own studio, so its first request is the one that loads the model.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

from modelatlas.records import Modalities, ModelRecord
from modelatlas.studio.playground import model_kinds
from tests.studio_browser import screenshot

SMOL = "local/smollm2-135m-instruct"
LONG = "Write a long story about a lighthouse keeper and the sea."
SECONDS = r"\d+\.\d\d s"

# Every change under #panes, with the first pane's figures at that moment: the figures the page
# showed while it streamed, which a poll after the fact could miss.
WATCH = """() => {
  window.seen = [];
  const stat = (pane, name) => pane.querySelector(`[data-stat="${name}"]`).textContent;
  new MutationObserver(() => {
    const pane = document.querySelector("#panes .pane");
    if (!pane) return;
    window.seen.push({
      ttft: stat(pane, "ttft_s"), rate: stat(pane, "tokens_per_s"), tokens: stat(pane, "output_tokens"),
      finished: pane.classList.contains("finished"),
    });
  }).observe(document.getElementById("panes"), {subtree: true, childList: true, characterData: true});
}"""


def stream(base: str, body: dict) -> list[dict]:
    with httpx.stream("POST", base + "/api/playground/stream", json=body, timeout=300) as response:
        assert response.status_code == 200, response.read()
        return [json.loads(line) for line in response.iter_lines() if line.strip()]


def test_kind_labels_come_from_the_record():
    assert model_kinds(ModelRecord(id="x/base", mode="completion")) == ["base"]
    assert model_kinds(ModelRecord(id="x/coder", tasks=["chat", "code"])) == ["chat", "code"]
    seeing = ModelRecord(id="x/vl", modalities=Modalities(input=["text", "image"], output=["text"]))
    assert model_kinds(seeing) == ["chat", "vision"]
    assert model_kinds(ModelRecord(id="x/asr", mode="transcription")) == ["speech"]
    assert model_kinds(ModelRecord(id="x/draw", mode="image_generation")) == ["image"]
    assert model_kinds(ModelRecord(id="x/vec", mode="embedding")) == ["embedding"]


@pytest.mark.slow
def test_the_stream_reports_the_load_of_the_request_that_waited_for_it(studio):
    body = {"models": [SMOL], "prompt": LONG, "max_tokens": 8, "temperature": 0}
    first = stream(studio, body)
    kinds = [e["type"] for e in first]
    assert kinds[:2] == ["loading", "loaded"] and kinds[-2:] == ["stats", "done"], kinds
    assert set(kinds[2:-2]) == {"delta"}, kinds  # the load comes before the first token
    loaded, stats = first[1], first[-2]
    assert loaded["index"] == 0 and loaded["load_s"] > 0
    assert stats["load_s"] == loaded["load_s"]
    assert stats["finish_reason"] == "length" and stats["output_tokens"] == 8
    assert 0 < stats["ttft_s"] < stats["latency_s"]  # the server's clock starts after the load
    # The model stays loaded: the second request loads nothing and says so.
    second = stream(studio, body)
    assert [e["type"] for e in second if e["type"] in ("loading", "loaded")] == []
    assert second[-2]["type"] == "stats" and second[-2]["load_s"] is None


def run_and_watch(page, max_tokens: str) -> list[dict]:
    """Send the form with Ctrl+Enter from the prompt; the first pane's figures as it streamed."""
    page.evaluate(WATCH)
    page.get_by_label("Max tokens").fill(max_tokens)
    page.get_by_label("Prompt", exact=True).press("Control+Enter")
    finished(page)
    return page.evaluate("window.seen")


def finished(page) -> None:
    page.wait_for_function("document.querySelector('#panes .pane.finished') !== null", timeout=180_000)
    page.wait_for_function("!document.getElementById('pg-run').disabled")


def streamed_live(seen: list[dict]) -> None:
    """The time to first token and a tokens/s figure were on the pane before the reply ended."""
    before_end = [s for s in seen if not s["finished"]]
    assert any(re.match(SECONDS, s["ttft"]) for s in before_end), seen
    assert any(re.fullmatch(r"≈\d+\.\d", s["rate"]) for s in before_end), seen
    assert any(re.fullmatch(r"\d+ so far", s["tokens"]) for s in before_end), seen


@pytest.mark.slow
def test_the_pane_shows_live_figures_the_load_once_and_the_truncation(page):
    page.goto("/playground?models=" + SMOL)
    picker = page.get_by_label("Model 1", exact=True)
    assert picker.input_value() == SMOL
    assert picker.locator("option:checked").inner_text() == f"{SMOL} (chat)"
    page.get_by_label("Prompt", exact=True).fill(LONG)
    page.get_by_label("Temperature").fill("0")
    pane = page.locator("#panes .pane").first
    load_row = pane.locator('[data-row="load_s"]')
    ttft = pane.locator('[data-stat="ttft_s"]')

    # The first request loads the model: its load is shown, and counted in the first token's time.
    streamed_live(run_and_watch(page, "12"))
    assert pane.locator(".pane-kinds").inner_text().strip() == "chat"
    assert load_row.is_visible() and re.fullmatch(SECONDS, load_row.locator("dd").inner_text())
    load = load_row.locator("dd").inner_text()
    waited = re.fullmatch(rf"({SECONDS}) \(incl\. ({SECONDS}) loading\)", ttft.inner_text())
    assert waited and waited.group(2) == load and float(waited.group(1)[:-2]) >= float(load[:-2])
    flag = pane.locator(".truncated")
    assert flag.inner_text().startswith("Truncated at 12 tokens (max tokens).")
    assert re.fullmatch(r"12 out · \d+ in", pane.locator('[data-stat="output_tokens"]').inner_text())
    status = page.locator("#pg-status")
    assert re.fullmatch(r"Done in \d+\.\d s\. 1 answer was truncated at max tokens\.", status.inner_text())
    assert page.evaluate("document.activeElement.id") == "pg-prompt"  # focus kept in the text box
    screenshot(page, "playground-first-request-with-load")
    # Only the status line announces: the panes' figures change silently, token by token.
    assert status.get_attribute("role") == "status" and status.get_attribute("aria-live") == "polite"
    assert page.locator("#panes").get_attribute("aria-live") == "off"
    assert page.locator("#panes [aria-live], #panes [role=status], #panes [role=alert]").count() == 0

    # The second request finds the model loaded: no load row, a plain time to first token.
    streamed_live(run_and_watch(page, "8"))
    assert load_row.is_hidden() and re.fullmatch(SECONDS, ttft.inner_text())
    assert flag.inner_text().startswith("Truncated at 8 tokens (max tokens).")

    # "Ask again" doubles max tokens and sends; focus goes back to the prompt.
    flag.get_by_role("button", name="Ask again with max tokens 16").click()
    page.wait_for_function("document.querySelector('#panes .truncated') === null")
    finished(page)
    assert page.get_by_label("Max tokens").input_value() == "16"
    assert pane.locator(".truncated").inner_text().startswith("Truncated at 16 tokens (max tokens).")
    assert page.evaluate("document.activeElement.id") == "pg-prompt"
