"""inspect_ai's openai provider against a real `modelatlas serve` with a key, through the
Responses API (POST /v1/responses): a 3-sample task runs to the end with an answer per sample.

inspect_ai sends a model to the Responses API by default only for names it knows (o-series,
gpt-5, codex); for any other it takes the model argument ``responses_api=True``. That the
requests really went to /v1/responses is read from the server's usage records (the endpoint
each request was metered under), and their tokens from the key's usage report.

The endpoint's own behaviour is tested in tests/test_serve_responses.py.
"""

from __future__ import annotations

import sqlite3
import time

import httpx
import pytest

from tests.servers import modelatlas_serve, new_key

inspect_ai = pytest.importorskip("inspect_ai")
pytest.importorskip("openai")

CHAT = "local/smollm2-135m-instruct"
QUESTIONS = [("Say the word yes.", "yes"), ("Name a colour.", "red"), ("Count to three.", "three")]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inspect")
    home = folder / "home"
    secret = new_key(home, "inspect")
    with modelatlas_serve(folder, ["--model", CHAT]) as base:
        yield base, home, secret


def test_a_three_sample_task_runs_through_the_responses_api(served, tmp_path, monkeypatch):
    from inspect_ai import Task
    from inspect_ai import eval as run_eval
    from inspect_ai.dataset import Sample
    from inspect_ai.scorer import includes
    from inspect_ai.solver import generate

    base, home, secret = served
    monkeypatch.setenv("OPENAI_API_KEY", secret)  # where inspect_ai's openai provider reads it
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    task = Task(
        dataset=[Sample(input=question, target=target) for question, target in QUESTIONS],
        solver=[generate()],
        scorer=includes(),
    )
    logs = run_eval(
        task,
        model=f"openai/{CHAT}",
        model_base_url=f"{base}/v1",
        model_args={"responses_api": True},
        max_tokens=16,
        temperature=0.0,
        log_dir=str(tmp_path / "logs"),
        display="none",
        max_retries=0,
    )
    log = logs[0]
    assert log.status == "success", log.error
    assert log.samples is not None and len(log.samples) == 3
    for sample in log.samples:
        assert sample.error is None
        assert sample.output.completion.strip()
        assert sample.output.usage is not None and sample.output.usage.input_tokens > 0
    rows = _finished_records(home, answered=3)
    # Besides the samples' three, inspect_ai may first probe for reasoning summaries (a request
    # with 'reasoning', refused with a 400 naming it; it then leaves reasoning out).
    assert {row[0] for row in rows} == {"responses"}
    assert [row[1] for row in rows].count(200) == 3 and set(row[1] for row in rows) <= {200, 400}
    report = httpx.get(f"{base}/v1/usage", headers={"Authorization": f"Bearer {secret}"}, timeout=30).json()
    assert report["input_tokens"] == sum(s.output.usage.input_tokens for s in log.samples)
    assert report["output_tokens"] == sum(s.output.usage.output_tokens for s in log.samples)


def _finished_records(home, answered: int, timeout: float = 10.0) -> list[tuple]:
    """The server's finished usage records, once ``answered`` of them are 200s: the meter stores
    records off the request path (within a quarter of a second), so the last answer's record may
    land just after inspect_ai has its reply."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(home / "modelatlas.db") as db:
            rows = db.execute(
                "SELECT endpoint, status, input_tokens, output_tokens FROM usage_records WHERE state = 'done'"
            ).fetchall()
        if [row[1] for row in rows].count(200) >= answered or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)
