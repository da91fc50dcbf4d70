"""The model comparison (/compare?m=ID&m=ID...): real catalog models side by side over plain HTTP
from a real studio, our own results from a run `modelatlas eval` made, and the whole round trip
in a real browser (model pages, "Add to comparison", the compare page, removing a model)."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.studio_browser import modelatlas, screenshot

SMOLLM = "local/smollm2-135m-instruct"
GEMMA = "local/gemma-3-270m"
GPT = "openai/gpt-4.1-mini"  # a hosted model from the bundled models.dev snapshot
GEMINI = "google/gemini-2.5-pro"  # a snapshot model with published benchmarks
QA = [
    {"id": "q1", "input": "alpha beta", "reference": "alpha beta"},
    {"id": "q2", "input": "gamma", "reference": "gamma delta"},
    {"id": "q3", "input": "red", "reference": "red"},
]
MODELS = """\
- id: test/echo
  backend: echo
- id: test/red
  backend: echo
  options: {reply: red}
"""


@pytest.fixture
def no_openai_key(monkeypatch):
    """No OpenAI key in the studio's environment, so a hosted OpenAI model cannot run there."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture
def echo_run(home, tmp_path) -> dict:
    """A run made by `modelatlas eval` on two deterministic echo models: its summary."""
    data, models = tmp_path / "qa.jsonl", tmp_path / "models.yaml"
    data.write_text("".join(json.dumps(row) + "\n" for row in QA))
    models.write_text(MODELS)
    modelatlas("catalog", "add", str(models), home=home)
    options = ["-m", "test/echo", "-m", "test/red", "--metric", "exact_match", "--json"]
    return json.loads(modelatlas("eval", str(data), *options, home=home))


def compare(client: httpx.Client, *ids: str, **params: str) -> httpx.Response:
    return client.get("/compare", params=[("m", m) for m in ids] + list(params.items()))


def columns(html: str, table: str) -> dict[str, list[str]]:
    """A compare table as {row label: the cells' texts}, marks and hidden words left out."""
    body = html.split(f'id="compare-{table}"', 1)[1].split("</table>", 1)[0]
    rows = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S):
        label = re.search(r'<th scope="row">(.*?)</th>', row, re.S).group(1)
        label = re.sub(r'<span class="(diff-mark|visually-hidden)"[^>]*>.*?</span>', "", label).strip()
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        rows[label] = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", c)).strip() for c in cells]
    return rows


def differing(html: str, table: str) -> set[str]:
    body = html.split(f'id="compare-{table}"', 1)[1].split("</table>", 1)[0]
    marked = re.findall(r'<tr class="differs">\s*<th scope="row">(.*?)</th>', body, re.S)
    labels = {re.sub(r"<span[^>]*>.*?</span>", "", m).strip() for m in marked}
    assert all("≠" in m and "the values differ" in m for m in marked)  # a mark and words, not colour
    return labels


# --- over plain HTTP ------------------------------------------------------------------------


@pytest.mark.slow
def test_local_and_hosted_models_side_by_side(no_openai_key, studio):
    with httpx.Client(base_url=studio, timeout=60) as client:
        page = compare(client, SMOLLM, GPT, GEMINI)
        assert page.status_code == 200
        html = page.text
        tables = html.count('<table class="data compare cols-3"')
        assert tables == 5  # facts, prices, limits, capabilities, benchmarks (no results yet)
        assert "<caption" in html and 'tabindex="0" role="region"' in html
        facts = columns(html, "facts")
        assert facts["Maker"] == ["HuggingFaceTB", "openai", "google"]
        assert facts["Served by"] == ["this machine", "openai (the maker)", "google (the maker)"]
        assert facts["Architecture"][0] == "decoder-only" and facts["Parameters"][0].startswith("135M")
        assert facts["Open weights"] == ["yes", "no", "no"] and facts["Licence"][0] == "apache-2.0"
        prices = columns(html, "prices")
        assert prices["Input, per 1M tokens"] == ["$0", "$0.40", "$1.25"]
        assert prices["Output, per 1M tokens"] == ["$0", "$1.60", "$10.00"]
        limits = columns(html, "limits")
        assert limits["Context length"] == ["8,192 tokens", "1,047,576 tokens", "1,048,576 tokens"]
        capabilities = columns(html, "capabilities")
        assert capabilities["Tool calling"] == ["unknown", "yes", "yes"]
        assert capabilities["Modalities in"][1] == "text, image, pdf"
        benchmarks = columns(html, "benchmarks")
        assert benchmarks["Aider Polyglot"][:2] == ["not published", "not published"]
        assert (
            benchmarks["Aider Polyglot"][2].startswith("83.1")
            and "aider.chat" in benchmarks["Aider Polyglot"][2]
        )
        assert 'href="https://aider.chat/docs/leaderboards/"' in html  # the score's source
        assert "No run in the store has evaluated these models yet" in html
        # The rows that differ carry the class and a visible mark; equal rows do not.
        marked = differing(html, "facts")
        assert {"Maker", "Parameters", "Open weights"} <= marked and "Kind" not in marked
        assert "Modalities out" not in differing(html, "capabilities")
        # Not runnable together: the hosted one has no key here, Google's has no backend.
        assert 'id="compare-playground"' not in html
        assert f"{GPT} needs OPENAI_API_KEY set" in html and "no backend that calls google" in html


@pytest.mark.slow
def test_only_differences_remove_and_add_live_in_the_url(studio):
    with httpx.Client(base_url=studio, timeout=60) as client:
        html = compare(client, SMOLLM, GEMMA).text
        assert "Kind" in columns(html, "facts") and "Hosting" in columns(html, "facts")
        toggle = re.search(r'href="([^"]+)" id="compare-toggle">Only differences', html).group(1)
        only = client.get(toggle.replace("&amp;", "&")).text
        facts = columns(only, "facts")
        assert "Kind" in facts and "Hosting" not in facts  # both local: the same, so hidden
        assert set(facts) == differing(only, "facts")
        removes = re.findall(r'class="compare-remove" href="([^"]+)"', html)
        assert [parse_qs(urlsplit(h.replace("&amp;", "&")).query)["m"] for h in removes] == [
            [GEMMA],
            [SMOLLM],
        ]
        playground = re.search(r'href="([^"]+)" id="compare-playground"', html).group(1)
        assert parse_qs(urlsplit(playground.replace("&amp;", "&")).query)["models"] == [f"{SMOLLM},{GEMMA}"]
        added = compare(client, SMOLLM, add=GEMMA)  # an exact id: straight to the new comparison
        assert added.status_code == 303 and parse_qs(urlsplit(added.headers["location"]).query)["m"] == [
            SMOLLM,
            GEMMA,
        ]
        matches = compare(client, SMOLLM, add="gpt-4.1").text  # part of a name: the matches to pick
        assert f"/compare?m={SMOLLM.replace('/', '%2F')}&amp;m=openai%2Fgpt-4.1" in matches
        assert "No model matches 'zzqqxx'" in compare(client, SMOLLM, add="zzqqxx").text.replace("&#39;", "'")


@pytest.mark.slow
def test_seven_models_are_refused_and_a_misspelt_id_gets_did_you_mean(studio):
    seven = [SMOLLM, GEMMA, GPT, GEMINI, "local/all-minilm-l6-v2", "local/whisper-base", "openai/gpt-4.1"]
    with httpx.Client(base_url=studio, timeout=60) as client:
        refused = compare(client, *seven)
        assert refused.status_code == 400
        assert "A comparison holds at most 6 models, and this link names 7" in refused.text
        assert '<table class="data compare' not in refused.text
        misspelt = compare(client, "local/smollm2-135m-instrct", GEMMA)
        assert misspelt.status_code == 404
        text = misspelt.text.replace("&#39;", "'")
        assert "Unknown model 'local/smollm2-135m-instrct'." in text and "Did you mean" in text
        fixed = f'href="/compare?m={SMOLLM.replace("/", "%2F")}&amp;m={GEMMA.replace("/", "%2F")}"'
        assert fixed in misspelt.text  # the suggestion put in the misspelt id's place
        assert columns(misspelt.text, "facts")["Kind"] == [
            "base model (text completion)"
        ]  # the known one stays
        full = compare(client, *seven[:6], add="openai/gpt-4.1").text
        assert "The comparison holds at most 6 models: remove one" in full
        assert "No models to compare yet" in compare(client).text


@pytest.mark.slow
def test_our_own_results_for_models_evaluated_with_the_cli(echo_run, studio):
    run_id = echo_run["run_id"]
    with httpx.Client(base_url=studio, timeout=60) as client:
        page = compare(client, "test/echo", "test/red", SMOLLM)
        assert page.status_code == 200
        results = columns(page.text, "results")
        (label, cells), *_ = results.items()
        assert label.startswith("qa.jsonl") and label.endswith("exact_match")
        echo, red, smollm = cells
        assert echo.startswith("0.667 [") and f"n = 3, run {run_id}" in echo  # the echo is right on q1 and q3
        assert red.startswith("0.333 [") and smollm == "not evaluated"  # "red" is right on q3 only
        assert label in differing(page.text, "results")
        assert f'href="/runs/{run_id}"' in page.text
        run_page = client.get(f"/runs/{run_id}").text  # the run page links to the comparison of its models
        assert 'href="/compare?m=test%2Fecho&amp;m=test%2Fred" id="run-compare"' in run_page


@pytest.mark.slow
def test_a_decision_links_to_the_comparison_of_its_candidates(studio):
    from modelatlas.strategies.choose.saved import save
    from tests.test_studio_pages import _decision

    decision = _decision()
    save(decision)
    with httpx.Client(base_url=studio, timeout=60) as client:
        html = client.get(f"/decisions/{decision.id}").text
        href = re.search(r'href="([^"]+)" id="decision-compare"', html).group(1).replace("&amp;", "&")
        assert parse_qs(urlsplit(href).query)["m"] == [
            SMOLLM,
            "local/qwen2.5-coder-0.5b-instruct",
        ]  # the pick first
        shown = client.get(href)
        assert shown.status_code == 200 and columns(shown.text, "facts")["Maker"] == ["HuggingFaceTB", "Qwen"]


# --- in the browser -------------------------------------------------------------------------


@pytest.mark.slow
def test_add_two_models_from_their_pages_then_remove_one(page):
    page.goto(f"/models/{SMOLLM}")
    page.get_by_role("button", name="Add to comparison").click()
    assert page.get_by_role("link", name="Compare 1 model", exact=True).is_visible()
    page.goto(f"/models/{GPT}")
    page.get_by_role("button", name="Add to comparison").click()
    page.get_by_role("link", name="Compare 2 models").click()
    page.wait_for_url(re.compile(r"/compare\?"))
    assert parse_qs(urlsplit(page.url).query)["m"] == [SMOLLM, GPT]
    heads = page.locator("#compare-facts thead th[data-model]")
    assert heads.evaluate_all("hs => hs.map(h => h.dataset.model)") == [SMOLLM, GPT]
    assert page.locator("#compare-facts tr.differs").count() > 5
    screenshot(page, "compare-two-models")
    page.get_by_role("link", name=f"Remove {GPT} from the comparison").click()
    page.wait_for_url(re.compile(r"/compare\?"))
    assert parse_qs(urlsplit(page.url).query)["m"] == [SMOLLM]
    assert page.locator("#compare-facts thead th[data-model]").count() == 1
    assert (
        page.get_by_role("link", name="Try in playground").get_attribute("href")
        == f"/playground?models={SMOLLM.replace('/', '%2F')}"
    )
    page.goto(f"/models/{GEMMA}")  # the list is now what the compare page showed
    page.get_by_role("button", name="Add to comparison").click()
    href = page.get_by_role("link", name="Compare 2 models").get_attribute("href")
    assert parse_qs(urlsplit(href).query)["m"] == [SMOLLM, GEMMA]
