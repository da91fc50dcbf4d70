"""The playground, the arena and evaluation jobs in a real browser (Chromium, headless).

Every test fails on a request beyond the studio's address or an error in the console (see
tests/studio_browser.py) and leaves a screenshot in test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from modelatlas.catalog import user
from modelatlas.catalog.records import ModelRecord
from tests.studio_browser import screenshot

LOCAL = ["local/smollm2-135m-instruct", "local/gemma-3-270m"]


@pytest.fixture
def echo_models():
    user.add(ModelRecord(id="test/echo", backend="echo"))
    user.add(ModelRecord(id="test/red", backend="echo", options={"reply": "red"}))
    return ["test/echo", "test/red"]


@pytest.mark.slow
def test_the_playground_streams_both_local_models_with_tokens_and_latency(page):
    page.goto("/playground?models=" + ",".join(LOCAL))
    assert page.get_by_label("Model 1", exact=True).input_value() == LOCAL[0]
    assert page.get_by_label("Model 2", exact=True).input_value() == LOCAL[1]
    page.get_by_label("Prompt", exact=True).fill("Name three colours.")
    page.get_by_label("Max tokens").fill("24")
    page.get_by_label("Temperature").fill("0")
    page.get_by_label("Prompt", exact=True).press("Control+Enter")  # sends the form, as Run does
    panes = page.locator("#panes .pane")
    page.wait_for_function("document.querySelectorAll('#panes .pane').length === 2")
    # Each model has its own pane, filled as its answer streams in.
    page.wait_for_function("document.querySelectorAll('#panes .pane.finished').length === 2", timeout=180_000)
    for i, model in enumerate(LOCAL):
        pane = panes.nth(i)
        assert pane.get_by_role("heading").inner_text() == model
        assert pane.locator(".answer").inner_text().strip()
        assert re.fullmatch(r"\d+ out · \d+ in", pane.locator('[data-stat="output_tokens"]').inner_text())
        ttft = pane.locator('[data-stat="ttft_s"]').inner_text()  # the first request loads the models
        assert re.fullmatch(r"\d+\.\d\d s \(incl\. \d+\.\d\d s loading\)", ttft), ttft
        assert re.fullmatch(r"\d+\.\d", pane.locator('[data-stat="tokens_per_s"]').inner_text())
        assert pane.locator('[data-stat="cost_usd"]').inner_text() == "$0"
    expect(page.locator("#pg-status")).to_have_text(re.compile(r"^Done in"))  # set after the last pane
    assert page.get_by_role("button", name="Run").is_enabled()
    screenshot(page, "playground-two-local-models")


@pytest.mark.slow
def test_the_playground_explains_a_missing_model(page):
    page.goto("/playground?models=test/nowhere")
    assert "Unknown model 'test/nowhere'" in page.get_by_role("alert").first.inner_text()
    for i in range(1, 5):
        page.get_by_label(f"Model {i}", exact=True).select_option("")
    page.get_by_role("button", name="Run").click()
    assert page.locator("#pg-error").inner_text() == "Pick at least one model."


@pytest.mark.slow
def test_an_arena_vote_reveals_the_names_and_updates_the_leaderboard(echo_models, page):
    page.goto("/arena")
    assert page.locator("#arena-empty").is_visible()
    page.get_by_text("Choose the models").click()
    page.get_by_label("First model").select_option("test/echo")
    page.get_by_label("Second model").select_option("test/red")
    page.get_by_label("Prompt").fill("alpha beta")
    page.get_by_role("button", name="Start battle").click()
    vote = page.get_by_role("group", name="Which answer is better?")
    page.wait_for_function("!document.getElementById('arena-vote').disabled")
    answers = page.locator("#arena-panes .answer").all_inner_texts()
    assert sorted(answers) == ["alpha beta", "red"]
    assert "test/" not in page.locator("#arena-panes").inner_text()  # still anonymous
    echo_side = "A" if answers[0] == "alpha beta" else "B"
    vote.get_by_role("button", name=f"{echo_side} is better").click()
    page.wait_for_function("document.getElementById('arena-result').textContent.includes('Vote stored')")
    panes = page.locator("#arena-panes").inner_text()
    assert "test/echo" in panes and "test/red" in panes  # revealed after the vote
    rows = page.locator("#arena-board tbody tr")
    assert rows.count() == 2 and rows.first.get_attribute("data-model") == "test/echo"
    page.wait_for_function("document.querySelectorAll('#arena-chart .main-svg').length > 0")
    screenshot(page, "arena-after-vote")
    page.reload()  # the leaderboard comes from the stored votes
    assert page.locator("#arena-board tbody tr").first.get_attribute("data-model") == "test/echo"
    assert page.locator("#arena-board tbody tr").first.locator("td").nth(5).inner_text() == "1"


@pytest.mark.slow
def test_an_evaluation_started_in_the_studio_shows_progress_and_its_run(echo_models, page, tmp_path):
    data = tmp_path / "qa.jsonl"
    rows = [{"id": f"q{i}", "input": f"red {i}", "reference": "red"} for i in range(5)]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    page.goto("/jobs")
    page.get_by_label("Dataset file").fill(str(data))
    page.get_by_label("test/echo", exact=True).check()
    page.get_by_label("test/red", exact=True).check()
    page.get_by_label("exact_match", exact=True).check()
    page.get_by_role("button", name="Start the evaluation").click()
    page.wait_for_url(re.compile(r"/jobs/job-"))
    finished = "['done', 'failed'].includes(document.querySelector('[data-job]').dataset.status)"
    page.wait_for_function(finished, timeout=180_000)
    assert page.locator('[data-field="status"]').inner_text() == "done", page.locator(".log").inner_text()
    assert page.locator('[data-field="progress"]').inner_text() == "10 of 10 answers"
    run_link = page.locator('[data-field="run"] a')
    run_id = run_link.inner_text()
    assert run_id.startswith("run-")
    screenshot(page, "job-done")
    page.reload()  # the state lives in the store, not in the page
    assert page.locator('[data-field="status"]').inner_text() == "done"
    page.locator('[data-field="run"] a').click()
    page.wait_for_url(f"**/runs/{run_id}")


@pytest.mark.slow
def test_the_pages_fit_a_narrow_window(echo_models, page):
    page.set_viewport_size({"width": 360, "height": 740})
    for path in ("/playground", "/arena", "/jobs"):
        page.goto(path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than the window"
        screenshot(page, "narrow" + path.replace("/", "-"))
