"""Every studio page checked by axe-core (the reference accessibility checker) in a real browser
(Chromium, headless), on a desktop window (1280x800) and a phone (390x844): a serious or critical
violation fails the test, and on the phone no page may scroll sideways. Each page at both sizes
leaves a full-page screenshot in test-artifacts/screenshots/ (a11y-NAME-WIDTH.png).

One studio server for the module, on a home filled the way a user fills it: echo models added and
evaluated with the CLI, a decision made by `modelatlas choose`, an improve report in the real
format, a job started through the studio's API, and a `modelatlas serve` answering one request
with a key made by `modelatlas keys create`, so the deployments page shows servers, keys and usage.

axe-core comes from npm (`make install-test` puts it in tests/js/node_modules); without it these
tests fail and say how to install it: an accessibility check that silently skips checks nothing.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.servers import free_port, home_env, modelatlas_serve, python_server
from tests.studio_browser import CHROMIUM, Watch, modelatlas, screenshot

pytestmark = pytest.mark.slow

AXE = Path(__file__).resolve().parent / "js" / "node_modules" / "axe-core" / "axe.min.js"
INSTALL = "`make install-test` (or only `npm install --no-save --prefix tests/js axe-core@4`)"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SERIOUS = ("serious", "critical")
ECHO, RED = "test/echo", "test/red"
QA = [
    {"id": "q1", "input": "alpha beta", "reference": "alpha beta"},
    {"id": "q2", "input": "gamma", "reference": "gamma delta"},
    {"id": "q3", "input": "one two three", "reference": "four"},
    {"id": "q4", "input": "red", "reference": "red"},
]
MODELS = f"""\
- id: {ECHO}
  backend: echo
  mode: chat
  price: {{input: 1.0, output: 2.0}}
- id: {RED}
  backend: echo
  mode: chat
  options: {{reply: red}}
"""
# axe's violations, each as one readable line per offending element.
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => n.target.join(" ") + "  " + n.html.slice(0, 160)),
  }));
}"""


@dataclass(frozen=True)
class Site:
    """The module's studio and the ids of what its home holds."""

    url: str
    run_id: str
    decision_id: str
    job_id: str
    picture: Path


def pages(site: Site) -> dict[str, str]:
    """Every page the studio's routers serve (studio/*.py), by a short name."""
    run = site.run_id
    return {
        "catalog": "/catalog",
        "model": f"/models/{ECHO}",
        "model-bundled": "/models/local/smollm2-135m-instruct",
        "compare-models": f"/compare?m={ECHO}&m={RED}",
        "benchmarks": "/benchmarks",
        "playground": f"/playground?models={ECHO},{RED}",
        "playground-vision": f"/playground?models={ECHO},{RED}",
        "playground-audio": "/playground?mode=audio",
        "playground-image": "/playground?mode=image",
        "arena": "/arena",
        "arena-image": "/arena?mode=image",
        "runs": "/runs",
        "run": f"/runs/{run}",
        "runs-compare": f"/runs/compare?a={run}&b={run}",
        "improve": "/improve",
        "improve-report": f"/improve/{run}",
        "decisions": "/decisions",
        "decision": f"/decisions/{site.decision_id}",
        "jobs": "/jobs",
        "job": f"/jobs/{site.job_id}",
        "deployments": "/deployments",
    }


# --- the data and the server ----------------------------------------------------------------


def save_improve_report(run: dict, home: Path) -> None:
    """An improve report in the real format, saved where `modelatlas improve` saves it (as
    tests/test_studio_pages.py makes one: a real improve run fine-tunes a model for minutes)."""
    from modelatlas.strategies.improve import Approach, Setup
    from modelatlas.strategies.improve_report import build_report

    approaches = [Approach("zero-shot", ECHO, "zero-shot"), Approach("fine-tuned", RED, "zero-shot")]
    setup = Setup(approaches=approaches, notes=["A fixture: test/red stands in for a fine-tuned model."])
    report = build_report(run, setup, price_per_hour=0.5).model_dump(mode="json")
    folder = home / "improve"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{report['run_id']}.json").write_text(json.dumps(report, indent=2, default=str))


def fill_home(home: Path, folder: Path) -> tuple[str, str]:
    """Models, a run, a decision and an improve report, made as a user makes them; the run's id
    and the decision's."""
    data, models = folder / "qa.jsonl", folder / "models.yaml"
    data.write_text("".join(json.dumps(row) + "\n" for row in QA))
    models.write_text(MODELS)
    modelatlas("catalog", "add", str(models), home=home)
    metrics = ["--metric", "exact_match", "--metric", "f1"]
    run = json.loads(modelatlas("eval", str(data), "-m", ECHO, "-m", RED, *metrics, "--json", home=home))
    choose = ["choose", str(data), "-m", ECHO, "-m", RED, "--duration", "1s", "--concurrency", "1", "--json"]
    decision = json.loads(modelatlas(*choose, home=home))
    save_improve_report(run, home)
    return run["run_id"], decision["id"]


def use_a_key(home: Path, server: str) -> None:
    """A key made with the CLI, used for one request, so usage is metered."""
    secret = json.loads(modelatlas("keys", "create", "web-app", "--rpm", "100", "--json", home=home))[
        "secret"
    ]
    body = {"model": ECHO, "messages": [{"role": "user", "content": "hello there studio"}]}
    answer = httpx.post(
        f"{server}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    time.sleep(0.6)  # the server stores usage records within a quarter of a second


def arena_vote(studio: str) -> None:
    """One blind battle through the studio's API and a vote on it, so the arena shows its board
    and rating chart."""
    body = {"prompt": "alpha beta", "model_a": ECHO, "model_b": RED}
    with httpx.stream("POST", f"{studio}/api/arena/battle", json=body, timeout=120) as response:
        assert response.status_code == 200, response.read()
        stream = [json.loads(line) for line in response.iter_lines() if line.strip()]
    start = stream[0]
    vote = httpx.post(f"{studio}/api/arena/vote", json={"battle": start["battle"], "winner": "a"}, timeout=30)
    assert vote.status_code == 200, vote.text


def finished_job(studio: str, data: Path) -> str:
    """An evaluation started through the studio's API, waited for; its job id."""
    request = {"dataset": str(data), "models": [ECHO, RED], "metrics": ["exact_match"]}
    job = httpx.post(f"{studio}/api/jobs", json=request, timeout=30).json()
    deadline = time.monotonic() + 120
    while job["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, f"job {job['id']} still {job['status']} after 120 s"
        time.sleep(0.5)
        job = httpx.get(f"{studio}/api/jobs/{job['id']}", timeout=30).json()
    assert job["status"] == "done", job
    return job["id"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The studio on a home holding everything its pages show, and a `modelatlas serve` beside it."""
    folder = tmp_path_factory.mktemp("a11y")
    home = folder / "home"
    run_id, decision_id = fill_home(home, folder)
    picture = folder / "red.png"
    Image.new("RGB", (32, 32), (220, 30, 30)).save(picture)
    port = free_port()
    args = ["-m", "modelatlas", "studio", "--host", "127.0.0.1", "--port", str(port)]
    studio_log = str(folder / "studio.log")
    with modelatlas_serve(folder, ["--model", ECHO], env=home_env(home)) as server:
        use_a_key(home, server)
        with python_server(
            args, port, ready_path="/favicon.ico", timeout=60, log_path=studio_log, env=home_env(home)
        ):
            url = f"http://127.0.0.1:{port}"
            arena_vote(url)
            yield Site(url, run_id, decision_id, finished_job(url, folder / "qa.jsonl"), picture)


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (each test opens its own context). Asked for before
    the site, so a missing axe-core fails at once, not after the data is made."""
    if not AXE.is_file():
        pytest.fail(f"axe-core is not installed ({AXE} is missing): run {INSTALL}.", pytrace=False)
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install -e '.[dev]')")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"needs {CHROMIUM} (make install-test installs Debian's chromium)")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def tab(browser, site):
    """A new page factory on the studio at a given window size; it fails the test on a request
    beyond the studio's address, a console error or a page error (as tests/studio_browser.py)."""
    watch = Watch(site.url)
    contexts = []

    def open_tab(viewport: dict):
        context = browser.new_context(base_url=site.url, viewport=viewport)
        context.route("**/*", watch.route)
        contexts.append(context)
        page = context.new_page()
        page.on("console", watch.console)
        page.on("pageerror", watch.page_error)
        return page

    yield open_tab
    for context in contexts:
        context.close()
    assert not watch.foreign, f"requests left the studio's address: {watch.foreign}"
    assert not watch.errors, "errors in the browser:\n" + "\n".join(watch.errors)


# --- checking a page ------------------------------------------------------------------------


def settle(page, name: str, site: Site) -> None:
    """Wait for what the page draws after loading (charts), and put the page in the state its
    name asks for: the playground run, an image attached in the vision one, an arena battle."""
    charts = page.locator(".plot:not([hidden] .plot)").count()
    if charts:
        page.wait_for_function(
            f"document.querySelectorAll('.plot .main-svg').length >= {charts}", timeout=60_000
        )
    if name == "playground":
        page.get_by_role("button", name="Run", exact=True).click()
        page.wait_for_function("document.querySelectorAll('#panes .pane.finished').length === 2")
    elif name == "playground-vision":
        page.locator("#pg-images").set_input_files(str(site.picture))
        page.locator("#pg-thumbs li").first.wait_for()
    elif name == "arena":
        page.get_by_text("Choose the models").click()
        page.get_by_label("First model").select_option(ECHO)
        page.get_by_label("Second model").select_option(RED)
        page.get_by_role("button", name="Start battle").click()
        page.wait_for_function("!document.getElementById('arena-vote').disabled")


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical violations on the page, one readable block each."""
    page.add_script_tag(path=str(AXE))
    found = [v for v in page.evaluate(RUN_AXE) if v["impact"] in SERIOUS]
    return [f"{v['id']} ({v['impact']}): {v['help']}\n      " + "\n      ".join(v["nodes"]) for v in found]


def check(page, name: str, path: str, site: Site, viewport: dict) -> list[str]:
    """What is wrong with one page at one window size: axe's violations and, on a phone, any
    sideways scroll. Leaves its screenshot."""
    response = page.goto(path)
    assert response.status == 200, f"{path} answered {response.status}"
    settle(page, name, site)
    problems = serious_violations(page)
    if viewport["width"] <= PHONE["width"]:
        wider = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        if wider > 1:
            problems.append(
                f"the page scrolls sideways: {wider}px wider than the {viewport['width']}px window"
            )
    screenshot(page, f"a11y-{name}-{viewport['width']}")
    return [f"{path} at {viewport['width']}px: {p}" for p in problems]


PAGE_NAMES = list(pages(Site("", "run", "decision", "job", Path())))


@pytest.mark.parametrize("name", PAGE_NAMES)
def test_page_has_no_serious_accessibility_violation(name, tab, site):
    path = pages(site)[name]
    problems = []
    for viewport in (DESKTOP, PHONE):
        problems += check(tab(viewport), name, path, site, viewport)
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)


# --- the phone layout -----------------------------------------------------------------------


def test_on_a_phone_the_keys_table_is_cards_with_every_column_in_view(tab, site):
    page = tab(PHONE)
    page.goto("/deployments")
    row = page.locator('#keys-table tr[data-key="web-app"]')
    labels = row.locator("td").evaluate_all("cells => cells.map(c => c.dataset.label)")
    assert labels[:3] == ["Name", "Id", "State"] and "Spent" in labels and "RPM" in labels
    assert page.locator("#keys-table thead").evaluate("h => getComputedStyle(h).position") == "absolute"
    for cell in (
        row.locator("td").nth(labels.index("Spent")),
        row.get_by_role("button", name="Revoke key web-app"),
    ):
        box = cell.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
        assert cell.is_visible()
    spent = row.locator("td").nth(labels.index("Spent"))
    label = spent.evaluate("c => getComputedStyle(c, '::before').content")
    assert label.startswith('"Spent"')  # the column's name shows beside its value
    wraps = page.locator(".table-wrap").evaluate_all(
        "ws => ws.filter(w => w.scrollWidth > w.clientWidth + 1).length"
    )
    assert wraps == 0  # no table scrolls sideways


def test_a_long_page_gets_an_on_this_page_nav(tab, site):
    page = tab(PHONE)
    page.goto(f"/runs/{site.run_id}")
    nav = page.get_by_role("navigation", name="On this page")
    headings = page.locator("main h2").evaluate_all("hs => hs.map(h => [h.id, h.textContent.trim()])")
    assert len(headings) >= 3 and all(id_ for id_, _ in headings)  # each h2 has an id to link to
    links = nav.get_by_role("link").evaluate_all("ls => ls.map(l => [l.getAttribute('href'), l.textContent])")
    assert links == [[f"#{id_}", text] for id_, text in headings]
    assert nav.bounding_box()["y"] < 400  # at the top, before the content
    items = next(id_ for id_, text in headings if text == "Items")
    nav.get_by_role("link", name="Items").click()
    assert page.evaluate("location.hash") == f"#{items}"
    top = page.locator(f"#{items}").evaluate("h => h.getBoundingClientRect().top")
    assert 0 <= top < PHONE["height"]  # scrolled to it
    page.goto("/jobs")  # fewer than three sections: no nav
    assert page.locator("main h2").count() < 3
    assert page.get_by_role("navigation", name="On this page").count() == 0


CONTENT_WIDTH = """el => { const s = getComputedStyle(el);
  return el.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight); }"""


def test_on_a_phone_the_filter_forms_fit_and_stack(tab, site):
    page = tab(PHONE)
    for path in ("/jobs", "/benchmarks", f"/runs/{site.run_id}", "/runs", "/deployments"):
        page.goto(path)
        forms = page.locator("form.filters, form.inline-form").all()
        assert forms, path
        for form in forms:
            box = form.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (path, box)
            assert form.evaluate("f => f.scrollWidth <= f.clientWidth"), path  # nothing spills out
            inner = form.evaluate(CONTENT_WIDTH)
            widths = form.locator(":scope > .field, :scope > fieldset").evaluate_all(
                "fs => fs.map(f => f.getBoundingClientRect().width)"
            )
            assert all(w >= 0.95 * inner for w in widths), (path, inner, widths)  # one field a line


def test_on_a_phone_a_sort_link_shows_when_the_keyboard_reaches_it(tab, site):
    """The catalog's header row is hidden on a phone (each card names its cells), but its sort
    links stay in the tab order: one that takes the focus is shown, never focused unseen."""
    page = tab(PHONE)
    page.goto("/catalog")
    head = page.locator("#results thead")
    assert head.bounding_box()["height"] <= 1  # hidden while the focus is elsewhere
    head.locator("a.sort").first.focus()
    box = head.bounding_box()
    assert box["height"] > 10 and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
