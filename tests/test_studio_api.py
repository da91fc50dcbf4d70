"""The studio's playground, arena and jobs: their store functions, and their HTTP API against the
studio started as a subprocess (``studio`` fixture, tests/studio_browser.py)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

import httpx
import pytest

from modelatlas.catalog import user
from modelatlas.catalog.records import ModelRecord, Price
from modelatlas.store import jobs as job_store
from modelatlas.store.votes import add_vote, list_votes

LOCAL = ["local/smollm2-135m-instruct", "local/gemma-3-270m"]
QA = [{"id": f"q{i}", "input": f"word{i} more words here", "reference": f"word{i}"} for i in range(6)]


@pytest.fixture
def echo_models():
    """Two deterministic, quick text models (registered in the test's home)."""
    user.add(ModelRecord(id="test/echo", backend="echo", price=Price(input=1.0, output=2.0)))
    user.add(ModelRecord(id="test/red", backend="echo", options={"reply": "red"}))
    return ["test/echo", "test/red"]


@pytest.fixture
def qa(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in QA))
    return path


def events(base: str, path: str, body: dict) -> list[dict]:
    with httpx.stream("POST", base + path, json=body, timeout=300) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in response.iter_lines() if line.strip()]


def texts(stream: list[dict]) -> dict[int, str]:
    found: dict[int, str] = {}
    for e in stream:
        if e["type"] == "delta":
            found[e["index"]] = found.get(e["index"], "") + e["text"]
    return found


# --- store ----------------------------------------------------------------------------------------


def test_votes_are_stored_and_listed_oldest_first():
    first = add_vote("hi", "m/a", "m/b", "a", answer_a="hello", answer_b="hey")
    add_vote("bye", "m/b", "m/c", "both_bad")
    votes = list_votes()
    assert [v.winner for v in votes] == ["a", "both_bad"] and votes[0] == first
    assert votes[0].answer_a == "hello" and votes[0].created_at.tzinfo is not None
    assert [v.prompt for v in list_votes(limit=1)] == ["bye"]
    with pytest.raises(ValueError, match="winner is one of"):
        add_vote("hi", "m/a", "m/b", "A")
    with pytest.raises(ValueError, match="two different models"):
        add_vote("hi", "m/a", "m/a", "tie")


def test_jobs_are_created_updated_and_listed():
    job = job_store.create_job("eval", {"dataset": "d.jsonl", "models": ["m/a"]})
    assert job.status == "queued" and not job.finished and job.params["models"] == ["m/a"]
    running = job_store.update_job(job.id, status="running", pid=123, total=8, done=3)
    assert (running.status, running.done, running.total, running.pid) == ("running", 3, 8, 123)
    done = job_store.update_job(job.id, status="done", done=8, run_id="run-1")
    assert done.finished and done.finished_at is not None and done.run_id == "run-1"
    assert job_store.get_job(job.id) == done and job_store.get_job("job-nope") is None
    other = job_store.create_job("eval", {})
    assert [j.id for j in job_store.list_jobs()] == [other.id, job.id]
    with pytest.raises(ValueError, match="status is one of"):
        job_store.update_job(job.id, status="lost")
    with pytest.raises(ValueError, match="no field"):
        job_store.update_job(job.id, kind="x")
    with pytest.raises(LookupError):
        job_store.update_job("job-nope", done=1)


def test_a_job_whose_process_is_gone_is_settled_from_its_run(echo_models, qa):
    """After a studio restart the job has no process handle: its run and its pid decide."""
    from modelatlas.studio import jobs

    job = job_store.create_job("eval", {"dataset": str(qa), "models": ["test/echo"], "metrics": ["f1"]})
    done = subprocess.run(jobs.eval_command(job), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    job_store.update_job(job.id, status="running", pid=_dead_pid())
    settled = jobs.job_state(job.id)
    assert settled.status == "done" and settled.done == settled.total == len(QA)
    assert settled.run_id and jobs.job_json(settled)["run_url"] == f"/runs/{settled.run_id}"

    lost = job_store.create_job("eval", {"dataset": str(qa), "models": ["test/echo"]})
    jobs.log_paths(lost.id)[1].write_text("Traceback...\nMemoryError\n")
    job_store.update_job(lost.id, status="running", pid=_dead_pid())
    failed = jobs.job_state(lost.id)
    assert failed.status == "failed" and "MemoryError" in failed.error


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_arena_draws_two_different_runnable_text_models(echo_models):
    from modelatlas.studio.arena import pick_pair

    rng = random.Random(1)
    for _ in range(20):
        a, b = pick_pair(None, None, rng)
        assert a != b and "local/all-minilm-l6-v2" not in (a, b)
    assert set(pick_pair("test/echo", None, rng)) >= {"test/echo"}
    assert set(pick_pair("test/echo", "test/red", rng)) == {"test/echo", "test/red"}


# --- over HTTP ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_playground_streams_both_local_models_with_stats(studio):
    stream = events(
        studio,
        "/api/playground/stream",
        {"models": LOCAL, "prompt": "Name a colour.", "max_tokens": 16, "temperature": 0},
    )
    assert stream[-1] == {"type": "done"}
    answers = texts(stream)
    assert answers[0].strip() and answers[1].strip()
    stats = {e["index"]: e for e in stream if e["type"] == "stats"}
    assert set(stats) == {0, 1}
    for s in stats.values():
        assert 0 < s["output_tokens"] <= 16 and s["input_tokens"] > 0
        assert s["ttft_s"] > 0 and s["latency_s"] >= s["ttft_s"] and s["tokens_per_s"] > 0
        assert s["cost_usd"] == 0  # local models are free unless priced
    # Deltas come before their model's stats.
    positions = [i for i, e in enumerate(stream) if e.get("index") == 1]
    assert stream[positions[-1]]["type"] == "stats"
    # The two local models take turns on the engine thread: both stream at once.
    deltas = [e["index"] for e in stream if e["type"] == "delta"]
    assert deltas.index(1) < len(deltas) - 1 - deltas[::-1].index(0), deltas


@pytest.mark.slow
def test_playground_explains_bad_input(studio, echo_models):
    url = studio + "/api/playground/stream"
    none = httpx.post(url, json={"models": [], "prompt": "hi"})
    assert none.status_code == 400 and "Pick at least one model" in none.json()["error"]
    unknown = httpx.post(url, json={"models": ["test/ech"], "prompt": "hi"})
    assert unknown.status_code == 404 and "Did you mean 'test/echo'" in unknown.json()["error"]
    vectors = httpx.post(url, json={"models": ["local/all-minilm-l6-v2"], "prompt": "hi"})
    assert vectors.status_code == 400 and "embedding model" in vectors.json()["error"]
    hot = httpx.post(url, json={"models": ["test/echo"], "prompt": "hi", "temperature": 3})
    assert hot.status_code == 400 and "temperature" in hot.json()["error"]
    priced = events(studio, "/api/playground/stream", {"models": ["test/echo"], "prompt": "one two"})
    assert texts(priced) == {0: "one two"}
    assert next(e for e in priced if e["type"] == "stats")["cost_usd"] > 0
    # One model failing mid-way is shown in its own pane; the other one still answers.
    user.add(ModelRecord(id="test/tiny", backend="echo", options={"context_length": 8}))
    body = {"models": ["test/tiny", "test/echo"], "prompt": "one two"}
    mixed = events(studio, "/api/playground/stream", body)
    failure = next(e for e in mixed if e["type"] == "error")
    assert failure["index"] == 0 and "maximum context length is 8 tokens" in failure["message"]
    assert texts(mixed) == {1: "one two"} and mixed[-1] == {"type": "done"}
    page = httpx.get(studio + "/playground", params={"models": "test/echo,nope/x"})
    assert page.status_code == 200 and "Unknown model &#39;nope/x&#39;" in page.text
    assert '<option value="test/echo" selected>' in page.text


@pytest.mark.slow
def test_an_arena_vote_is_stored_and_moves_the_leaderboard(studio, echo_models):
    body = {"prompt": "alpha beta", "model_a": "test/echo", "model_b": "test/red"}
    stream = events(studio, "/api/arena/battle", body)
    start = stream[0]
    assert start["type"] == "start" and "test/" not in json.dumps(stream)  # the names stay hidden
    assert sorted(texts(stream).values()) == ["alpha beta", "red"]
    answer = texts(stream)
    echo_side = "a" if answer[0] == "alpha beta" else "b"
    vote = httpx.post(studio + "/api/arena/vote", json={"battle": start["battle"], "winner": echo_side})
    assert vote.status_code == 200
    revealed = vote.json()
    assert {revealed["model_a"], revealed["model_b"]} == {"test/echo", "test/red"}
    assert revealed["leaderboard"][0]["model"] == "test/echo" and revealed["leaderboard"][0]["wins"] == 1
    board = httpx.get(studio + "/api/arena/leaderboard").json()["leaderboard"]
    assert [r["model"] for r in board] == ["test/echo", "test/red"]
    assert board[0]["ci_low"] <= board[0]["rating"] <= board[0]["ci_high"]
    stored = list_votes()
    assert len(stored) == 1 and stored[0].prompt == "alpha beta"
    assert {stored[0].answer_a, stored[0].answer_b} == {"alpha beta", "red"}
    again = httpx.post(studio + "/api/arena/vote", json={"battle": start["battle"], "winner": "a"})
    assert again.status_code == 404 and "not known" in again.json()["error"]
    assert "test/echo" in httpx.get(studio + "/arena").text


@pytest.mark.slow
def test_a_job_started_from_the_api_runs_and_links_its_run(studio, echo_models, qa, tmp_path):
    # About a second per item (4 words, a quarter of a second each), four at a time per model.
    user.add(ModelRecord(id="test/slow", backend="echo", options={"delay_s": 0.25}))
    body = {"dataset": str(qa), "models": ["test/slow", "test/red"], "metrics": ["exact_match"]}
    started = httpx.post(studio + "/api/jobs", json=body)
    assert started.status_code == 201, started.text
    job_id = started.json()["id"]
    seen = _poll(studio, job_id)
    final = seen[-1]
    assert final["status"] == "done", final
    assert final["done"] == final["total"] == 2 * len(QA)
    dones = [s["done"] for s in seen]
    assert dones == sorted(dones)  # progress only moves forward
    midway = [s for s in seen if s["status"] == "running" and 0 < s["done"] < s["total"]]
    assert midway and midway[0]["run_id"] == final["run_id"]  # visible while it runs
    assert final["run_url"] == f"/runs/{final['run_id']}"
    assert httpx.get(studio + final["run_url"]).status_code == 200
    page = httpx.get(f"{studio}/jobs/{job_id}")  # a reload shows the same state, from the store
    assert page.status_code == 200 and f'href="/runs/{final["run_id"]}"' in page.text
    assert job_id in httpx.get(studio + "/jobs").text
    listed = subprocess.run(  # and the CLI sees the run the studio started
        [sys.executable, "-m", "modelatlas", "runs", "list", "--json"], capture_output=True, text=True
    )
    assert final["run_id"] in [r["id"] for r in json.loads(listed.stdout)]


@pytest.mark.slow
def test_a_failing_job_shows_its_error(studio, qa):
    started = httpx.post(studio + "/api/jobs", json={"dataset": str(qa), "models": ["test/nowhere"]})
    final = _poll(studio, started.json()["id"])[-1]
    assert final["status"] == "failed" and "Unknown model 'test/nowhere'" in final["error"]
    missing = httpx.post(studio + "/api/jobs", json={"dataset": str(qa) + ".nope", "models": ["m/x"]})
    assert missing.status_code == 400 and "No dataset file" in missing.json()["error"]
    form = httpx.post(studio + "/jobs", data={"dataset": str(qa)})
    assert form.status_code == 400 and "Pick at least one model" in form.text


def _poll(studio: str, job_id: str, timeout: float = 240) -> list[dict]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = httpx.get(f"{studio}/api/jobs/{job_id}").json()
        seen.append(state)
        if state["status"] in ("done", "failed"):
            return seen
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish: {seen[-1]}")


def test_job_subprocess_uses_the_same_home(home, echo_models, qa):
    from modelatlas.studio import jobs

    job = jobs.start_eval(jobs.EvalRequest(dataset=str(qa), models=["test/red"], limit=2))
    assert job.status == "running" and job.pid
    deadline = time.monotonic() + 300
    while not (final := jobs.job_state(job.id)).finished and time.monotonic() < deadline:
        time.sleep(0.2)
    assert final.status == "done" and final.done == final.total == 2, final.error
    assert json.loads(jobs.log_paths(job.id)[0].read_text())["run_id"] == final.run_id
