"""The studio's read-only pages in a real browser (Chromium, headless) and over plain HTTP.

Every browser test fails on a request beyond the studio's address or an error in the console
(see tests/studio_browser.py) and leaves a screenshot in test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from typer.testing import CliRunner

from modelatlas.cli.main import app
from tests.studio_browser import modelatlas, screenshot

MINILM = "local/all-minilm-l6-v2"
QA = [
    {"id": "q1", "input": "alpha beta", "reference": "alpha beta"},
    {"id": "q2", "input": "gamma", "reference": "gamma delta"},
    {"id": "q3", "input": "one two three", "reference": "four"},
    {"id": "q4", "input": "red", "reference": "red"},
]
MODELS = """\
- id: test/echo
  backend: echo
  price: {input: 1.0, output: 2.0}
- id: test/red
  backend: echo
  options: {reply: red}
"""


@pytest.fixture
def echo_run(home, tmp_path) -> dict:
    """A run made by `modelatlas eval` (two deterministic echo models): its summary."""
    data, models = tmp_path / "qa.jsonl", tmp_path / "models.yaml"
    data.write_text("".join(json.dumps(row) + "\n" for row in QA))
    models.write_text(MODELS)
    modelatlas("catalog", "add", str(models), home=home)
    options = ["-m", "test/echo", "-m", "test/red", "--metric", "exact_match", "--metric", "f1", "--json"]
    return json.loads(modelatlas("eval", str(data), *options, home=home))


@pytest.fixture
def improve_report(echo_run, home) -> dict:
    """An improve report in the real format, built by `build_report` and saved where `improve` saves it."""
    from modelatlas.strategies.improve import Approach, Setup
    from modelatlas.strategies.improve_report import build_report

    approaches = [
        Approach("zero-shot", "test/echo", "zero-shot"),
        Approach("fine-tuned", "test/red", "zero-shot"),
    ]
    setup = Setup(approaches=approaches, notes=["A fixture: test/red stands in for a fine-tuned model."])
    report = build_report(echo_run, setup, price_per_hour=0.5).model_dump(mode="json")
    folder = home / "improve"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{report['run_id']}.json").write_text(json.dumps(report, indent=2, default=str))
    return report


def charts_drawn(page, count: int) -> None:
    """Wait until ``count`` plotly charts are drawn (plotly adds an SVG to each)."""
    page.wait_for_function(f"document.querySelectorAll('.plot .main-svg').length >= {count}")


# --- in the browser -------------------------------------------------------------------------


@pytest.mark.slow
def test_catalog_filters_to_local_embedding_models_and_opens_minilm(page, studio):
    page.goto("/catalog")
    page.get_by_label("Task").select_option("embeddings")
    page.get_by_label("Runs").select_option("local")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"task=embeddings.*hosting=local"))
    link = page.get_by_role("link", name=MINILM, exact=True)
    assert link.is_visible()
    ids = page.locator("#results tbody tr").evaluate_all("rows => rows.map(r => r.dataset.model)")
    assert MINILM in ids and all(i.startswith("local/") for i in ids)
    # The URL holds the filters: opened afresh, it shows the same view.
    page.goto(page.url)
    assert page.get_by_label("Task").input_value() == "embeddings"
    assert page.get_by_label("Runs").input_value() == "local"
    screenshot(page, "catalog-local-embeddings")
    link = page.get_by_role("link", name=MINILM, exact=True)
    link.click()
    page.wait_for_url(f"**/models/{MINILM}")
    assert page.get_by_role("heading", level=1).inner_text() == "all-MiniLM-L6-v2"
    facts = page.locator("#facts").inner_text()
    assert "encoder-only" in facts and "22.7M" in facts and "apache-2.0" in facts
    assert "client.embeddings.create" in page.locator("#code-1").inner_text()


@pytest.mark.slow
def test_model_card_copies_code_and_keeps_a_comparison(page, studio):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=studio)
    page.goto("/models/local/smollm2-135m-instruct")
    page.get_by_role("button", name="Copy the python sample").first.click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.locator("#code-1").inner_text() and "chat.completions.create" in copied
    try_link = page.get_by_role("link", name="Try in playground")
    assert try_link.get_attribute("href") == "/playground?models=local/smollm2-135m-instruct"
    page.get_by_role("button", name="Add to comparison").click()
    page.goto("/models/local/gemma-3-270m")
    page.get_by_role("button", name="Add to comparison").click()
    compare = page.get_by_role("link", name="Compare 2 models").get_attribute("href")
    assert compare == "/compare?m=local%2Fsmollm2-135m-instruct&m=local%2Fgemma-3-270m"
    assert "Published benchmarks" in page.content() and "Evaluation results" in page.content()


@pytest.mark.slow
def test_a_run_made_by_the_cli_shows_its_chart_and_items(echo_run, page):
    run_id = echo_run["run_id"]
    page.goto("/runs")
    page.get_by_role("link", name=run_id).click()
    page.wait_for_url(f"**/runs/{run_id}")
    charts_drawn(page, 3)
    board = page.locator("#leaderboard tbody tr")
    assert board.count() == 2 and "test/echo" in board.first.inner_text()  # echo scores best
    rows = page.locator("#items tbody tr")
    assert rows.count() == 4
    assert rows.first.get_attribute("data-item") == "q1"  # the one item where the arms disagree comes first
    assert "disagree" in rows.first.get_attribute("class")
    assert "exact_match: 1.000" in rows.first.inner_text()


@pytest.mark.slow
def test_benchmarks_page_charts_quality_cost_and_latency(echo_run, page):
    page.goto("/benchmarks")
    charts_drawn(page, 3)
    assert page.locator("#leaderboard tbody tr").count() == 2
    page.get_by_label("Metric", exact=True).select_option("f1")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"metric=f1"))
    charts_drawn(page, 3)
    assert "f1 (95% CI)" in page.locator("#leaderboard thead").inner_text()


@pytest.mark.slow
def test_improve_page_lists_a_saved_report(improve_report, page):
    run_id = improve_report["run_id"]
    page.goto("/improve")
    page.get_by_role("link", name=run_id).click()
    page.wait_for_url(f"**/improve/{run_id}")
    assert "Recommendation:" in page.locator("main").inner_text()
    assert "fine-tuned" in page.locator(".improve-section table").inner_text()
    charts_drawn(page, 3)


@pytest.mark.slow
def test_narrow_window_keeps_the_nav_usable(page):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/catalog")
    menu = page.get_by_role("button", name="Menu")
    runs = page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs")
    assert menu.is_visible() and not runs.is_visible()
    menu.focus()
    page.keyboard.press("Enter")
    assert menu.get_attribute("aria-expanded") == "true" and runs.is_visible()
    screenshot(page, "narrow-nav-open")
    runs.click()
    page.wait_for_url("**/runs")
    page.goto("/models/local/smollm2-135m-instruct")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing spills sideways


@pytest.mark.slow
def test_keyboard_reaches_the_content_and_the_nav(page):
    page.goto("/catalog")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "/catalog"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # focus is visible


@pytest.mark.slow
def test_every_page_loads_without_errors(echo_run, improve_report, page):
    run_id = echo_run["run_id"]
    pages = {
        "catalog": "/catalog",
        "catalog-page-2": "/catalog?sort=price&page=2",
        "model-card": "/models/local/smollm2-135m-instruct",
        "model-card-hosted": "/models/openai/gpt-4.1-mini",
        "benchmarks": "/benchmarks",
        "runs": "/runs",
        "run": f"/runs/{run_id}",
        "runs-compare": f"/runs/compare?a={run_id}&b={run_id}",
        "improve": "/improve",
        "improve-report": f"/improve/{run_id}",
    }
    for name, path in pages.items():
        response = page.goto(path)
        assert response.status == 200, path
        assert page.title().endswith("modelatlas studio")
        if page.locator(".plot").count():
            charts_drawn(page, page.locator(".plot").count())
        screenshot(page, f"page-{name}")
    assert all(url.startswith(page.watch.origin) for url in page.watch.requests)


# --- over plain HTTP ------------------------------------------------------------------------


@pytest.mark.slow
def test_page_status_codes(echo_run, studio):
    run_id = echo_run["run_id"]
    with httpx.Client(base_url=studio, timeout=30) as client:
        assert client.get("/", follow_redirects=True).url.path == "/catalog"
        for path in ("/catalog", f"/models/{MINILM}", "/benchmarks", "/runs", f"/runs/{run_id}", "/improve"):
            page = client.get(path)
            assert page.status_code == 200, path
            assets = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page.text)
            assert assets and all(a.startswith("/") for a in assets), assets  # nothing from elsewhere
        assert client.get(f"/runs/compare?a={run_id}&b={run_id}").status_code == 200
        assert client.get("/catalog?task=nonsense").status_code == 400
        assert "must be a number" in client.get("/catalog?min_context=lots").text
        assert client.get("/catalog?min_context=32k").status_code == 200  # as people write it
        for missing in ("/models/nobody/nothing", "/runs/run-nope", "/improve/run-nope", "/improve/..%2Fx"):
            assert client.get(missing).status_code == 404, missing
        plotly = client.get("/static/plotly.min.js")
        assert plotly.status_code == 200 and "javascript" in plotly.headers["content-type"]
        assert len(plotly.content) > 1_000_000  # httpx has unzipped it
        sent = int(plotly.headers["content-length"])
        assert plotly.headers["content-encoding"] == "gzip" and sent < len(plotly.content) / 2
        assert "max-age" in plotly.headers["cache-control"]
        again = client.get("/static/plotly.min.js", headers={"If-None-Match": plotly.headers["etag"]})
        assert again.status_code == 304 and not again.content
        assert client.get("/favicon.ico").headers["content-type"].startswith("image/svg+xml")
        css = client.get("/static/studio.css")  # the studio's own files: gzipped, cached, revalidated
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert css.headers["content-encoding"] == "gzip" and "max-age" in css.headers["cache-control"]
        revalidated = client.get("/static/studio.css", headers={"If-None-Match": css.headers["etag"]})
        assert revalidated.status_code == 304
        assert client.get("/static/studio.js").headers["content-encoding"] == "gzip"
        for missing in ("/static/nothing.js", "/static/..%2Fweb.py", "/static/%2E%2E%2F__init__.py"):
            assert client.get(missing).status_code == 404, missing


@pytest.mark.slow
def test_catalog_paging_and_filters_live_in_the_url(studio):
    with httpx.Client(base_url=studio, timeout=30) as client:
        first = client.get("/catalog", params={"hosting": "hosted", "sort": "price"}).text
        assert "Page 1 of" in first and 'href="/catalog?hosting=hosted&amp;sort=price&amp;page=2"' in first
        second = client.get("/catalog", params={"hosting": "hosted", "sort": "price", "page": 2}).text
        assert "Page 2 of" in second and 'rel="prev"' in second
        local = client.get("/catalog", params={"task": "embeddings", "hosting": "local", "fits": "1"}).text
        assert MINILM in local and "openai/" not in local


def test_studio_command_is_registered():
    result = CliRunner().invoke(app, ["studio", "--help"])
    assert result.exit_code == 0
    assert "--port" in result.output and "--open" in result.output and "--host" in result.output


def test_studio_refuses_a_public_address_without_allow_remote():
    result = CliRunner().invoke(app, ["studio", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "no login" in result.output and "--allow-remote" in result.output


def _decision():
    """A decision as `choose` saves one (built from its result types; the end-to-end run of
    choose has its own test in test_choose.py)."""
    from modelatlas.strategies.choose import Candidate, Constraints, Decision, Point, Shortlist

    points = [
        Point(model="local/smollm2-135m-instruct", quality=0.31, ci_low=0.22, ci_high=0.40, n=40,
              cost_per_1k=0.0, p95_ms=2100.0, tokens_per_s=91.0, error_rate=0.0, on_front=True),
        Point(model="local/qwen2.5-coder-0.5b-instruct", quality=0.35, ci_low=0.25, ci_high=0.45, n=40,
              cost_per_1k=0.0, p95_ms=5900.0, tokens_per_s=27.0, error_rate=0.0, on_front=True),
    ]  # fmt: skip
    short = Shortlist(
        searched=5287,
        matched=2,
        candidates=[
            Candidate(model=p.model, hosted=False, why=["runs here, free per token"]) for p in points
        ],
    )
    return Decision(
        id="d0c1510f00aa", created_at="2026-12-03T12:00:00+00:00",
        dataset="examples/edtech-support/test.jsonl",
        metric="f1", metric_reason="free text", constraints=Constraints(runnable=True), shortlist=short,
        run_id="run-x", concurrency=4, points=points, pick=points[0].model, tied_with=[points[1].model],
        recommendation="Pick local/smollm2-135m-instruct: the data cannot separate it from the other.",
    )  # fmt: skip


@pytest.mark.slow
def test_a_saved_decision_is_listed_and_shown(page, studio):
    from modelatlas.strategies.choose.saved import save

    decision = _decision()
    save(decision)
    page.goto("/decisions")
    page.get_by_role("link", name=decision.id).click()
    page.wait_for_url(f"**/decisions/{decision.id}")
    main = page.locator("main").inner_text()
    assert "cannot separate" in main and "tied with the pick" in main
    assert page.locator("main svg circle").count() == 2  # both candidates charted, with error bars
    screenshot(page, "page-decision")
    with httpx.Client(base_url=studio, timeout=30) as client:
        assert client.get("/decisions/nope").status_code == 404
