"""Issue 11, items 3 and 10: a key's TPM and budget hold under concurrency (each request
reserves its worst case when admitted, settles when it ends, and releases it on every failure
path), and a server killed with -9 leaves a usage record for every request it was answering.

Real `modelatlas serve` subprocesses on 127.0.0.1, the echo backend, a real SQLite store."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.servers import free_port, python_server
from tests.test_serve_keys import at_home, cli, new_key

FAST = "test/fast"
SLOW = "test/slow"  # 0.1 s a token: 20 requests of 4 tokens are all in flight together
N = 20
WORDS = "one two three four"  # 4 tokens in, and 4 out with max_tokens 4
ONE = 4 * 1000 / 1e6 + 4 * 2000 / 1e6  # what one such request costs: $0.012


def start(folder, *extra: str):
    """A server for FAST and SLOW, both at $1000 per 1M input and $2000 per 1M output tokens."""
    home = folder / "home"
    from modelatlas.catalog import user
    from modelatlas.catalog.records import ModelRecord

    with at_home(home):
        user.add(ModelRecord(id=FAST, backend="echo", mode="chat"))
        user.add(ModelRecord(id=SLOW, backend="echo", mode="chat", options={"delay_s": 0.1}))
    prices = folder / "prices.yaml"
    prices.write_text("".join(f"{m}: {{input: 1000, output: 2000}}\n" for m in (FAST, SLOW)))
    port = free_port()
    env = {**os.environ, "MODELATLAS_HOME": str(home), "MODELATLAS_RATE_WINDOW_S": "600"}
    env.pop("MODELATLAS_DATABASE_URL", None)
    args = ["-m", "modelatlas", "serve", "--port", str(port), "--model", FAST, "--model", SLOW]
    args += ["--prices", str(prices), "--queue-size", "64", *extra]
    running = python_server(args, port, ready_path="/health", log_path=str(folder / "server.log"), env=env)
    return running, f"http://127.0.0.1:{port}", home


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    running, base, home = start(tmp_path_factory.mktemp("limits"))
    with running:
        warm = new_key(home, "warm")  # loads both models: the reservations count with their tokenizer
        for model in (FAST, SLOW):
            assert ask(base, warm, model).status_code == 200
        yield base, home


def ask(base: str, secret: str, model: str = SLOW, text: str = WORDS, timeout: float = 60, **extra):
    body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 4, **extra}
    headers = {"Authorization": f"Bearer {secret}"}
    return httpx.post(f"{base}/v1/chat/completions", json=body, headers=headers, timeout=timeout)


def at_once(base: str, secret: str) -> list[httpx.Response]:
    """N requests sent together (released by one barrier)."""
    barrier = threading.Barrier(N)

    def one(_):
        barrier.wait()
        return ask(base, secret)

    with ThreadPoolExecutor(N) as pool:
        return list(pool.map(one, range(N)))


def used(base: str, secret: str) -> dict:
    report = httpx.get(f"{base}/v1/usage", headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    assert report.status_code == 200
    return report.json()


def until_refused(base: str, secret: str) -> httpx.Response:
    """Requests one after another until the key is refused (at most 40)."""
    for _ in range(40):
        answer = ask(base, secret, FAST)
        if answer.status_code != 200:
            return answer
    raise AssertionError("the key was never refused")


def test_concurrent_requests_never_overspend_a_budget(served):
    base, home = served
    budget = 0.15
    secret = new_key(home, "budget20", "--budget", str(budget))
    answers = at_once(base, secret)
    codes = [a.status_code for a in answers]
    assert 200 in codes and set(codes) <= {200, 429}, codes
    for refused in (a for a in answers if a.status_code == 429):
        error = refused.json()["error"]
        assert error["code"] == "insufficient_quota" and "budget" in error["message"]
    spent = used(base, secret)["cost_usd"]
    assert spent <= budget + ONE + 1e-9, f"{N} requests at once spent ${spent:.3f} of ${budget}"
    # One after another, the key spends up to its budget (refusing early would be wrong too).
    last = until_refused(base, secret)
    assert last.status_code == 429 and last.json()["error"]["code"] == "insufficient_quota"
    spent = used(base, secret)["cost_usd"]
    assert budget <= spent <= budget + ONE + 1e-9


def test_concurrent_requests_never_exceed_tpm(served):
    base, home = served
    tpm = 100
    secret = new_key(home, "tpm20", "--tpm", str(tpm))
    answers = at_once(base, secret)
    codes = [a.status_code for a in answers]
    assert 200 in codes and set(codes) <= {200, 429}, codes
    for refused in (a for a in answers if a.status_code == 429):
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert "tokens" in refused.json()["error"]["message"]
        assert int(refused.headers["Retry-After"]) >= 1
    tokens = used(base, secret)["total_tokens"]
    assert tokens <= tpm + 8, f"{N} requests at once used {tokens} tokens of {tpm} per minute"
    until_refused(base, secret)
    assert tpm <= used(base, secret)["total_tokens"] <= tpm + 8


def admitted_again(base: str, secret: str) -> None:
    """A request that fits the key's limits only with nothing else in flight (max_tokens over
    its TPM and its budget) is admitted again: every reservation before it was released."""
    deadline = time.monotonic() + 10
    while True:
        answer = ask(base, secret, FAST, max_tokens=1000)
        if answer.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # a client that left is noticed a moment later
    assert answer.status_code == 200, answer.text


def test_reservations_are_released_on_every_failure_path(served):
    base, home = served
    secret = new_key(home, "failing", "--tpm", "500", "--budget", "1")
    headers = {"Authorization": f"Bearer {secret}"}
    long = " ".join(f"w{i}" for i in range(40))  # 4 s of tokens on SLOW
    admitted_again(base, secret)
    # An error after admission: prompt plus max_tokens over the model's context.
    too_long = ask(base, secret, FAST, max_tokens=5000)
    assert too_long.status_code == 400
    admitted_again(base, secret)
    # A stream the client leaves after its first token.
    body = {"model": SLOW, "messages": [{"role": "user", "content": long}], "stream": True, "max_tokens": 40}
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, headers=headers) as answer:
        next(line for line in answer.iter_lines() if '"content":"w0"' in line.replace(" ", ""))
    admitted_again(base, secret)
    # A stream the client leaves before anything arrives.
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, headers=headers) as answer:
        assert answer.status_code == 200
    admitted_again(base, secret)
    # A whole answer the client stops waiting for.
    with pytest.raises(httpx.TimeoutException):
        ask(base, secret, SLOW, text=long, max_tokens=40, timeout=0.5)
    admitted_again(base, secret)


def test_a_server_killed_mid_stream_leaves_a_record_per_request(tmp_path):
    running, base, home = start(tmp_path)
    with running as proc:
        secret = new_key(home, "crash")
        headers = {"Authorization": f"Bearer {secret}"}
        body = {
            "model": SLOW,
            "messages": [{"role": "user", "content": " ".join(f"w{i}" for i in range(100))}],
            "stream": True,
            "max_tokens": 100,
        }
        started = threading.Semaphore(0)

        def stream():
            try:
                with httpx.stream(
                    "POST", f"{base}/v1/chat/completions", json=body, headers=headers, timeout=30
                ) as answer:
                    lines = answer.iter_lines()
                    for line in lines:
                        if '"content":"w' in line.replace(" ", ""):
                            started.release()
                            break
                    for _ in lines:  # read on until the server is gone
                        pass
            except httpx.HTTPError:
                pass  # the server is gone

        threads = [threading.Thread(target=stream) for _ in range(5)]
        for t in threads:
            t.start()
        for _ in range(4):  # an echo model streams 4 at a time: the fifth waits for a slot
            assert started.acquire(timeout=60)
        time.sleep(1.0)  # records are written within a quarter of a second
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        for t in threads:
            t.join(timeout=30)
    with sqlite3.connect(home / "modelatlas.db") as db:
        rows = db.execute(
            "SELECT state, status, request_id FROM usage_records WHERE key_name = 'crash'"
        ).fetchall()
    assert len(rows) == 5 and {r[0] for r in rows} == {"in_flight"}, rows
    assert len({r[2] for r in rows}) == 5
    done = cli(home, "usage", "--key", "crash", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report[0]["requests"] == 5 and report[0]["unfinished"] == 5
    table = cli(home, "usage", "--key", "crash")
    assert "unfinished" in table.stdout and "killed" in table.stdout
    with sqlite3.connect(home / "modelatlas.db") as db:  # `usage` saw the dead server's rows
        states = db.execute("SELECT state FROM usage_records WHERE key_name = 'crash'").fetchall()
    assert {r[0] for r in states} == {"interrupted"}, states


def test_only_the_rows_of_a_dead_server_become_interrupted():
    from modelatlas.processes import this_host
    from modelatlas.store.usage import Usage, record_usage, settle_dead_servers, usage_records

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    rows = [
        Usage(
            model_id="m",
            endpoint="chat.completions",
            status=0,
            request_id=f"r{pid}-{host}",
            state="in_flight",
            server_pid=pid,
            server_host=host,
        )
        for pid, host in ((os.getpid(), this_host()), (dead.pid, this_host()), (dead.pid, "elsewhere"))
    ]
    record_usage(rows)
    assert settle_dead_servers() == 1
    states = {(u.server_pid, u.server_host): u.state for u in usage_records()}
    assert states == {
        (os.getpid(), this_host()): "in_flight",  # alive: still running
        (dead.pid, this_host()): "interrupted",
        (dead.pid, "elsewhere"): "in_flight",  # another host's process cannot be judged here
    }


def test_token_id_embedding_inputs_are_reserved_as_their_count():
    """Embedding input given as token ids reserves one token per id (as completion prompts of
    token ids do), beside the texts' count and a marker allowance per input."""
    from modelatlas.serve.protocol import EmbeddingRequest
    from modelatlas.serve.reserve import PROMPT_ALLOWANCE, _shape

    ids_only = EmbeddingRequest(model="m", input=[[1, 2, 3], [4, 5]])
    assert _shape(ids_only) == ([], 5, 2 * PROMPT_ALLOWANCE, 0)
    one = EmbeddingRequest(model="m", input=list(range(40)))
    assert _shape(one) == ([], 40, PROMPT_ALLOWANCE, 0)
    texts = EmbeddingRequest(model="m", input=["a b", "c"])
    assert _shape(texts) == (["a b", "c"], 0, 2 * PROMPT_ALLOWANCE, 0)
