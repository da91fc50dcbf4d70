"""The studio's charts: the figure data (quality axis fixed to a bounded metric's range, cost and
latency from 0, no cost axis when all is free, sideways bars when crowded, error bars on every
quality estimate, a note for each entry left out) on the entries the pages pass in, and the charts
drawn by plotly in a real browser on runs made with `modelatlas eval`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from modelatlas.evals.results import LeaderboardEntry
from modelatlas.studio import charts
from modelatlas.studio.chart_parts import metric_bounds
from tests.studio_browser import modelatlas, screenshot

QA = [
    {"id": "q1", "input": "alpha beta", "reference": "alpha beta"},
    {"id": "q2", "input": "gamma", "reference": "gamma delta"},
    {"id": "q3", "input": "one two three", "reference": "four"},
    {"id": "q4", "input": "red", "reference": "red"},
]
PRICED = """\
- id: test/echo
  backend: echo
  price: {input: 1.0, output: 2.0}
- id: test/red
  backend: echo
  options: {reply: red}
"""
CACHED_NOTE = "left out: test/echo, test/red (no latency: every answer came from the cache)"


def entry(label: str, mean: float | None = 0.6, spread: float = 0.1, **more) -> LeaderboardEntry:
    """A leaderboard entry as `arm_entries` makes them (the type every chart page passes in)."""
    ci = {"ci_low": mean - spread, "ci_high": mean + spread} if mean is not None else {}
    values = {"n": 20, "cost_per_1k": 0.5, "latency_p50": 0.2, **ci, **more}
    names = {
        "run_id": "run-x",
        "dataset": "qa.jsonl",
        "label": label,
        "model_id": label,
        "strategy": "zero-shot",
    }
    return LeaderboardEntry(**names, mean=mean, **values)


def by_id(found: list[charts.Chart]) -> dict[str, charts.Chart]:
    return {c.id: c for c in found}


# --- the figure data --------------------------------------------------------------------------


def test_metric_bounds_come_from_the_metric_definitions():
    assert metric_bounds("exact_match") == (0.0, 1.0)  # binary: 0..1 without saying
    assert metric_bounds("f1") == (0.0, 1.0) and metric_bounds("pass_at_k") == (0.0, 1.0)
    assert metric_bounds("wer") == (0.0, None)  # insertions: WER can pass 1
    assert metric_bounds("judge_score") == (1.0, 5.0)
    assert metric_bounds("no_such_metric") is None


def test_a_bounded_metric_gets_its_whole_range_on_every_chart():
    entries = [entry("a/one", 0.52, 0.02), entry("b/two", 0.55, 0.02)]
    found = by_id(charts.figures(entries, "f1"))
    assert found["chart-quality"].figure["layout"]["yaxis"]["range"] == [0.0, 1.0]  # noise stays small
    for name in ("chart-cost", "chart-latency"):
        layout = found[name].figure["layout"]
        assert layout["yaxis"]["range"] == [0.0, 1.0]
        assert layout["xaxis"]["rangemode"] == "tozero"  # cost and latency from 0
    judged = charts.quality_chart([entry("a/one", 3.5, 0.5)], "judge_score")
    assert judged.figure["layout"]["yaxis"]["range"] == [1.0, 5.0]


def test_an_unbounded_metric_starts_at_zero_and_is_not_capped():
    found = charts.quality_chart([entry("a/one", 1.3, 0.2), entry("b/two", 0.4)], "wer")
    axis = found.figure["layout"]["yaxis"]
    assert axis["rangemode"] == "tozero" and "range" not in axis


def test_all_free_draws_no_cost_axis_and_says_so():
    free = [entry("local/a", cost_per_1k=0.0), entry("local/b", cost_per_1k=0.0)]
    cost = by_id(charts.figures(free, "exact_match"))["chart-cost"]
    assert cost.figure is None and cost.notes[0] == charts.ALL_FREE and cost.key == []
    mixed = charts.cost_chart([entry("local/a", cost_per_1k=0.0), entry("api/b", cost_per_1k=2.5)], "f1")
    assert mixed.figure["data"][0]["x"] == [0.0, 2.5]
    assert mixed.figure["layout"]["xaxis"]["rangemode"] == "tozero" and mixed.notes == []


def test_many_entries_or_long_labels_turn_the_bars_sideways():
    few = charts.quality_chart([entry("a/one"), entry("b/two")], "accuracy").figure
    assert few["data"][0]["orientation"] == "v" and "height" not in few["layout"]
    many = charts.quality_chart([entry(f"maker/model-{i}") for i in range(16)], "accuracy").figure
    bar = many["data"][0]
    assert bar["orientation"] == "h" and bar["y"] == [f"maker/model-{i}" for i in range(16)]
    assert bar["error_x"]["array"] == pytest.approx([0.1] * 16) and "error_y" not in bar
    assert many["layout"]["xaxis"]["range"] == [0.0, 1.0]  # the value axis is now x
    assert many["layout"]["yaxis"]["autorange"] == "reversed"  # the first (best) on top
    assert many["layout"]["height"] > 360  # room for every label
    long = "some-provider/an-extremely-long-model-name-instruct-v3@few-shot"
    sideways = charts.quality_chart([entry(long), entry("b/two")], "accuracy").figure
    assert sideways["data"][0]["orientation"] == "h"
    tick = sideways["layout"]["yaxis"]["ticktext"][0]
    assert tick == "some-provide…t-v3@few-shot"  # cut in the middle on the axis, whole in the hover


def test_scatters_have_error_bars_and_numbered_points_with_a_key():
    entries = [entry("a/one", 0.7, 0.1), entry("b/two", 0.4, 0.05)]
    for chart in (charts.cost_chart(entries, "f1"), charts.latency_chart(entries, "f1")):
        points = chart.figure["data"][0]
        assert points["error_y"]["array"] == pytest.approx([0.1, 0.05])
        assert points["error_y"]["arrayminus"] == pytest.approx([0.1, 0.05])
        assert points["text"] == ["1", "2"]  # numbers on the points, no labels to overlap
        assert points["customdata"] == ["a/one", "b/two"] and chart.key == ["a/one", "b/two"]


def test_points_on_the_same_spot_share_one_number_list():
    same = [entry(f"local/m{i}", 0.8, cost_per_1k=0.0) for i in range(3)] + [
        entry("api/x", 0.8, cost_per_1k=3.0)
    ]
    points = charts.cost_chart([*same, entry("local/m3", 0.8, cost_per_1k=0.0)], "f1").figure["data"][0]
    assert points["text"] == ["1–3,5", "", "", "4", ""]  # nothing printed on top of another number
    assert points["customdata"][0] == "local/m0<br>local/m1<br>local/m2<br>local/m3"
    assert points["marker"]["size"][0] > points["marker"]["size"][3]  # the list fits in its marker


def test_entries_left_out_are_named_with_the_reason():
    entries = [
        entry("ok/model"),
        entry("broken/model", None, errors=20),
        entry("cached/model", latency_p50=None, cached=20),
        entry("mixed/model", latency_p50=None, cached=12, errors=8),
        entry("unpriced/model", cost_per_1k=None),
    ]
    found = by_id(charts.figures(entries, "exact_match"))
    error = "left out: broken/model (no exact_match: every answer was an error)"
    assert found["chart-quality"].notes == [error]
    assert found["chart-cost"].notes == [error, "left out: unpriced/model (no cost: the price is not known)"]
    assert found["chart-latency"].notes == [
        error,
        "left out: cached/model (no latency: every answer came from the cache)",
        "left out: mixed/model (no latency: the answers came from the cache or were errors)",
    ]
    assert found["chart-latency"].key == ["ok/model", "unpriced/model"]
    no_ci = charts.quality_chart([entry("a/one"), entry("b/two", ci_low=None, ci_high=None)], "f1")
    assert no_ci.notes == ["no error bar: b/two (no 95% CI could be computed)"]
    twice = [entry(f"cached/{i}", latency_p50=None, cached=20) for i in range(3)]
    assert charts.latency_chart(twice, "f1").notes == [  # one reason, one note
        "left out: cached/0, cached/1, cached/2 (no latency: every answer came from the cache)"
    ]


def test_no_entries_no_charts():
    assert charts.figures([], "f1") == [] and charts.figures([entry("a/one")], "") == []


def test_improve_approaches_chart_as_the_run_arms_do(tmp_path, home):
    """The improve page's entries (approach_entries on a report from a real run) get the same charts."""
    from modelatlas.strategies.improve import Approach, Setup
    from modelatlas.strategies.improve_report import build_report
    from modelatlas.studio.improve_pages import approach_entries

    run = eval_run(tmp_path, home)
    approaches = [
        Approach("zero-shot", "test/echo", "zero-shot"),
        Approach("fine-tuned", "test/red", "zero-shot"),
    ]
    setup = Setup(approaches=approaches)
    report = build_report(run, setup, price_per_hour=0.5)
    found = by_id(charts.figures(approach_entries(report), report.metric or "", per="approach"))
    assert found["chart-quality"].caption == "exact_match per approach, with its 95% CI"
    assert found["chart-quality"].figure["layout"]["yaxis"]["range"] == [0.0, 1.0]
    assert found["chart-latency"].key == ["zero-shot", "fine-tuned"]


def test_deployments_usage_all_free_shows_no_cost_axis(home, studio):
    from modelatlas.store.usage import Usage, record_usage

    chat = "/v1/chat/completions"
    record_usage([Usage("local/a", chat, 200, 10, 5), Usage("local/b", chat, 200, 3, 4)])  # no cost: local
    page = httpx.get(f"{studio}/deployments", timeout=30).text
    assert "Tokens per model (all free: every request here cost nothing, so no cost is drawn)" in page
    figure = json.loads(re.search(r'id="usage-models-data">(.*?)</script>', page).group(1))
    assert [t["name"] for t in figure["data"]] == ["tokens"] and "yaxis2" not in figure["layout"]


# --- in the browser ---------------------------------------------------------------------------


def eval_run(tmp_path: Path, home: Path, *, twice: bool = False) -> dict:
    """A run of two echo models by `modelatlas eval` (the second time, every answer from the cache)."""
    data, models = tmp_path / "qa.jsonl", tmp_path / "models.yaml"
    data.write_text("".join(json.dumps(row) + "\n" for row in QA))
    models.write_text(PRICED)
    modelatlas("catalog", "add", str(models), home=home)
    args = ["eval", str(data), "-m", "test/echo", "-m", "test/red", "--metric", "exact_match", "--json"]
    first = json.loads(modelatlas(*args, home=home))
    return json.loads(modelatlas(*args, home=home)) if twice else first


def plotted(page, chart_id: str) -> dict:
    """What plotly drew in ``chart_id``: error bars in its SVG and its axes' ranges."""
    page.wait_for_function(f"document.querySelector('#{chart_id} .main-svg') !== null")
    return page.evaluate(
        """id => { const el = document.getElementById(id);
        return { errorbars: el.querySelectorAll('g.errorbar path.yerror').length,
                 x: el._fullLayout.xaxis.range, y: el._fullLayout.yaxis.range }; }""",
        chart_id,
    )


def under(page, caption: str, selector: str):
    """``selector`` inside the chart captioned ``caption``."""
    return page.locator("figure.chart", has=page.locator("figcaption", has_text=caption)).locator(selector)


@pytest.mark.slow
def test_charts_draw_error_bars_bounded_axes_and_the_left_out_note(tmp_path, home, page):
    cached = eval_run(tmp_path, home, twice=True)
    assert [m["cached"] for m in cached["models"]] == [4, 4]
    page.goto("/benchmarks")  # the newest run per model: the cached one, with no latency
    quality, cost = plotted(page, "chart-quality"), plotted(page, "chart-cost")
    assert quality["errorbars"] == 2 and cost["errorbars"] == 2  # error bars on the scatter too
    assert quality["y"] == [0, 1] and cost["y"] == [0, 1]  # exact_match: the whole 0..1
    assert cost["x"][0] == 0  # cost from 0
    assert page.locator("#chart-latency").count() == 0
    assert CACHED_NOTE in under(page, "exact_match against latency", ".chart-notes").inner_text()
    assert under(page, "exact_match against cost", ".chart-key li").all_inner_texts() == [
        "test/echo",
        "test/red",
    ]
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the charts fit its width
    page.wait_for_function("document.querySelector('#chart-quality .main-svg').getAttribute('width') < 390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "charts-benchmarks-cached-phone")
    page.goto(f"/runs/{cached['run_id']}")  # one run: the latency note names the cache there too
    plotted(page, "chart-quality")
    assert CACHED_NOTE in under(page, "exact_match against latency", ".chart-notes").inner_text()
