"""Issue 11, items 1, 2 and 7: one bad request to a batched llama.cpp model fails alone.

A real `modelatlas serve` serves the bundled SmolLM2 with ``--parallel 4`` and the echo model
``test/fast``; three unrelated streams run while the bad requests (a negative seed, an empty
prompt, a lone surrogate) get their 400s. The batcher is also driven directly, on its engine
thread, with requests whose own settings fail, to show that only they fail.
"""

from __future__ import annotations

import contextlib
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

from modelatlas.backends.channel import Done, Failed, Text, WorkerMessage
from modelatlas.backends.llamacpp_batch import Request
from modelatlas.backends.llamacpp_engine import Sampling
from modelatlas.catalog.bundled import resolve_bundled
from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import BackendError, InvalidRequestError
from modelatlas.loading import load_model
from modelatlas.types import Message
from tests.conftest import run
from tests.servers import free_port, python_server

SMOL = "local/smollm2-135m-instruct"
FAST = "test/fast"
# SmolLM2's GGUF registered as an embedding model: serve embeds only with a model whose mode
# says so (a chat model answers /v1/embeddings with a 400 naming /v1/chat/completions).
SMOL_EMBED = "test/smollm2-embeddings"
QUEUE = 4
STORY = "Write a long story about a lighthouse keeper and the sea."


# -- a real server -----------------------------------------------------------------------------


def _cli(home, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MODELATLAS_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "modelatlas", *args], env=env, capture_output=True, text=True, timeout=120
    )


def _new_key(home, name: str) -> str:
    done = _cli(home, "keys", "create", name, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["secret"]


def _serve_args(port: int) -> list[str]:
    args = ["-m", "modelatlas", "serve", "--port", str(port), "--model", SMOL, "--model", FAST]
    args += ["--model", SMOL_EMBED]
    return [*args, "--parallel", "4", "--queue-size", str(QUEUE)]


def _home(folder):
    """A home with the echo model ``test/fast`` in its catalog, and the server's environment."""
    from modelatlas.catalog import user

    home = folder / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELATLAS_HOME", str(home))
        user.add(ModelRecord(id=FAST, backend="echo", mode="chat"))
        smol = resolve_bundled(SMOL).location
        user.add(ModelRecord(id=SMOL_EMBED, backend="llamacpp", mode="embedding", location=smol))
    env = {**os.environ, "MODELATLAS_HOME": str(home)}
    env.pop("MODELATLAS_DATABASE_URL", None)
    return home, env


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("harden-batch")
    home, env = _home(folder)
    secret = _new_key(home, "abuser")
    port = free_port()
    log = str(folder / "server.log")
    with python_server(_serve_args(port), port, "/health", log_path=log, env=env) as proc:
        yield f"http://127.0.0.1:{port}", secret, home, proc


def _post(base: str, secret: str, path: str, body: dict, timeout: float = 30) -> httpx.Response:
    """POST ``body`` as JSON as a client would write it (json.dumps escapes a lone surrogate as
    ``\\ud800``, which httpx's own encoder cannot send)."""
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    return httpx.post(f"{base}{path}", content=json.dumps(body), headers=headers, timeout=timeout)


def _chat(text: str, **extra) -> dict:
    return {"model": SMOL, "messages": [{"role": "user", "content": text}], **extra}


class Streams:
    """Three unrelated streams on SmolLM2, read in threads; ``started`` once each has text."""

    def __init__(self, base: str, secret: str):
        self.base, self.secret = base, secret
        self.started = threading.Barrier(4)
        self.pool = ThreadPoolExecutor(3)
        self.futures = [self.pool.submit(self._read, i) for i in range(3)]

    def _read(self, i: int) -> tuple[str, str | None, bool]:
        body = _chat(f"{STORY} Chapter {i + 1}.", stream=True, max_tokens=24, temperature=0)
        headers = {"Authorization": f"Bearer {self.secret}"}
        text, reason, done, told = "", None, False, False
        url = f"{self.base}/v1/chat/completions"
        with httpx.stream("POST", url, json=body, headers=headers, timeout=60) as answer:
            assert answer.status_code == 200
            for line in answer.iter_lines():
                if line == "data: [DONE]":
                    done = True
                elif line.startswith("data: "):
                    choice = json.loads(line[6:])["choices"][0]
                    text += choice["delta"].get("content") or ""
                    reason = choice.get("finish_reason") or reason
                if text and not told:
                    told = True
                    self.started.wait(timeout=60)
        return text, reason, done

    def finish(self) -> list[tuple[str, str | None, bool]]:
        try:
            return [f.result(timeout=90) for f in self.futures]
        finally:
            self.pool.shutdown(wait=False)


def _assert_whole(results) -> None:
    for text, reason, done in results:
        assert done, "a stream was cut before data: [DONE]"
        assert reason == "length" and len(text.split()) >= 5


def _assert_400(answer: httpx.Response, param: str) -> None:
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param and param in error["message"], error


def test_negative_seed_is_a_400_while_three_streams_finish(served):
    base, secret, *_ = served
    streams = Streams(base, secret)
    streams.started.wait(timeout=60)  # all three are decoding in the batch now
    bad_chat = _post(base, secret, "/v1/chat/completions", _chat("Hi", seed=-1, max_tokens=4), timeout=20)
    bad_text = _post(base, secret, "/v1/completions", {"model": SMOL, "prompt": "Hi", "seed": -1}, timeout=20)
    streamed = _post(base, secret, "/v1/chat/completions", _chat("Hi", seed=-5, stream=True), timeout=20)
    for answer in (bad_chat, bad_text, streamed):
        _assert_400(answer, "seed")
    _assert_whole(streams.finish())


def test_empty_prompt_is_a_400_while_three_streams_finish(served):
    base, secret, *_ = served
    streams = Streams(base, secret)
    streams.started.wait(timeout=60)
    empty = _post(base, secret, "/v1/completions", {"model": SMOL, "prompt": "", "max_tokens": 2}, timeout=20)
    _assert_400(empty, "prompt")
    in_list = _post(base, secret, "/v1/completions", {"model": SMOL, "prompt": ["Hi", ""]}, timeout=20)
    _assert_400(in_list, "prompt[1]")
    streamed = {"model": SMOL, "prompt": "", "stream": True}
    _assert_400(_post(base, secret, "/v1/completions", streamed, timeout=20), "prompt")
    for tokens in ([], [[]]):  # no token ids at all
        _assert_400(_post(base, secret, "/v1/completions", {"model": SMOL, "prompt": tokens}), "prompt")
    _assert_whole(streams.finish())


def test_empty_chat_content_is_a_valid_answer(served):
    """Empty content still renders the chat template's turn markers: there are tokens to go on."""
    base, secret, *_ = served
    for message in ({"role": "user", "content": ""}, {"role": "user"}):
        body = {"model": SMOL, "messages": [message], "max_tokens": 3, "temperature": 0}
        answer = _post(base, secret, "/v1/chat/completions", body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["usage"]["prompt_tokens"] > 0


def test_bad_requests_free_their_queue_slots(served):
    """20 bad requests against a queue of 4: had one kept its slot, the good one would get 503."""
    base, secret, *_ = served
    bad = [
        ("/v1/chat/completions", _chat("Hi", seed=-1)),
        ("/v1/completions", {"model": SMOL, "prompt": "Hi", "seed": -(2**40)}),
        ("/v1/completions", {"model": SMOL, "prompt": "", "max_tokens": 2}),
        ("/v1/completions", {"model": SMOL, "prompt": ["", "x"]}),
        ("/v1/chat/completions", _chat("\ud800")),
    ]
    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda i: _post(base, secret, *bad[i % 5], timeout=20), range(20)))
    assert [a.status_code for a in answers] == [400] * 20
    good = _post(base, secret, "/v1/chat/completions", _chat("Say hello.", max_tokens=5, seed=3))
    assert good.status_code == 200 and good.json()["choices"][0]["message"]["content"]


def test_empty_embedding_input_is_a_400(served):
    """On main, llama.cpp was asked to decode no tokens: a 500, and a context left corrupt (a
    double free when the model was unloaded)."""
    base, secret, *_ = served
    for text, param in (("", "input"), (["a", ""], "input[1]"), ([], "input")):
        _assert_400(_post(base, secret, "/v1/embeddings", {"model": SMOL_EMBED, "input": text}), param)
    fine = _post(base, secret, "/v1/embeddings", {"model": SMOL_EMBED, "input": ["hello"]})
    assert fine.status_code == 200 and len(fine.json()["data"][0]["embedding"]) > 100


def _statuses(home, key: str, n: int) -> list[tuple[str, int]]:
    """The (endpoint, status) of a key's usage records, once the meter has stored ``n``."""
    deadline = time.monotonic() + 10
    rows: list = []
    while time.monotonic() < deadline:
        with contextlib.closing(sqlite3.connect(home / "modelatlas.db")) as db:
            query = "SELECT endpoint, status FROM usage_records WHERE key_name = ? ORDER BY id"
            rows = db.execute(query, (key,)).fetchall()
        if len(rows) >= n:
            break
        time.sleep(0.2)
    return rows


def test_lone_surrogate_is_a_400_metered_as_400(served):
    """On main: the echo model answered 500 after metering 200; llama.cpp's tokenizer 500."""
    base, _, home, _ = served
    secret = _new_key(home, "surrogate")
    parts = [{"type": "text", "text": "ok"}, {"type": "text", "text": "\ud800"}]
    in_parts = {"model": FAST, "messages": [{"role": "user", "content": parts}], "stream": True}
    cases = [
        ("/v1/chat/completions", _chat("a\ud800b") | {"model": FAST}, "messages[0].content"),
        ("/v1/chat/completions", _chat("\udfff"), "messages[0].content"),
        ("/v1/chat/completions", in_parts, "messages[0].content[1].text"),
        ("/v1/completions", {"model": SMOL, "prompt": "one \ud800"}, "prompt"),
        ("/v1/completions", {"model": FAST, "prompt": ["ok", "\ud800"]}, "prompt[1]"),
        ("/v1/embeddings", {"model": FAST, "input": "\ud800"}, "input"),
        ("/v1/embeddings", {"model": SMOL_EMBED, "input": ["fine", "half \udbff"]}, "input[1]"),
    ]
    for path, body, param in cases:
        _assert_400(_post(base, secret, path, body), param)
    rows = _statuses(home, "surrogate", len(cases))
    assert [status for _, status in rows] == [400] * len(cases), rows
    fine = _post(base, secret, "/v1/chat/completions", _chat("é 😀 \U0001f600") | {"model": FAST})
    assert fine.status_code == 200 and "😀" in fine.json()["choices"][0]["message"]["content"]


def test_sigterm_stops_the_server_promptly(served):
    """Last of the server's tests (it stops the module's server): on main, the request lost in
    the batcher kept uvicorn waiting for it, and SIGTERM no longer stopped the server."""
    base, secret, _, proc = served
    try:
        status = _post(base, secret, "/v1/chat/completions", _chat("Hi", seed=-1), timeout=10).status_code
    except httpx.TimeoutException:
        status = None  # lost in the batcher, as on main
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=15) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    assert status == 400


# -- the batcher itself ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smol4(smollm2_path):
    record = ModelRecord(
        id="file/smol-harden",
        backend="llamacpp",
        location=smollm2_path,
        options={"n_ctx": 2048, "parallel": 4},
    )
    return load_model(record, max_concurrency=8)


class Outcome:
    """What a batched request was told: its text pieces, then its end or its error."""

    def __init__(self, fail_on_text: bool = False):
        self.pieces: list[str] = []
        self.end: tuple | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.fail_on_text = fail_on_text

    def emit(self, message: WorkerMessage) -> None:
        match message:
            case Failed(error=error):
                self.error = error
                self.done.set()
            case Done():
                self.end = (message.finish_reason, message.output_tokens)
                self.done.set()
            case Text(text=text):
                if self.fail_on_text:
                    raise RuntimeError("the consumer of this stream broke")
                self.pieces.append(text)

    def wait(self) -> Outcome:
        assert self.done.wait(60), "the request was never answered"
        return self


def _add(model, tokens: list[int], sampling: Sampling, direct: bool = False, **kind) -> Outcome:
    """Hand a request to the model's batcher on its engine thread (``direct``: straight into
    its queue, past the checks ``add`` makes, as a request the checks missed would be)."""
    engine, outcome = model.backend.engine, Outcome(**kind)
    request = Request(tokens, sampling, threading.Event(), outcome.emit)

    def add():
        batcher = engine.batcher(model.backend.options.parallel)
        if not direct:
            batcher.add(request)
            return
        batcher.waiting.append(request)
        if not batcher.scheduled:
            batcher._schedule()

    engine.submit(add).result()
    return outcome


def _prompt(model, text: str) -> list[int]:
    engine = model.backend.engine
    return engine.submit(engine.chat_tokens, [{"role": "user", "content": text}]).result()


def _sampling(**changes) -> Sampling:
    base = {"max_tokens": 24, "temperature": 0.0, "top_p": 1.0, "stop": (), "seed": 0}
    return Sampling(**(base | changes))


def _three_decoding(model) -> list[Outcome]:
    """Three good requests, returned once each has its first text (so all are in the batch)."""
    good = [_add(model, _prompt(model, f"{STORY} Part {i}."), _sampling()) for i in range(3)]
    deadline = time.monotonic() + 60
    while not all(o.pieces for o in good) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(o.pieces and not o.done.is_set() for o in good)
    return good


def _finished_normally(good: list[Outcome]) -> None:
    for outcome in good:
        assert outcome.wait().error is None and outcome.end == ("length", 24)
        assert "".join(outcome.pieces).strip()


def test_a_request_whose_sequence_cannot_start_fails_alone(smol4):
    good = _three_decoding(smol4)
    tokens = _prompt(smol4, "Hello")
    seeded = _add(smol4, tokens, _sampling(seed=-1))  # numpy refuses the seed while admitting
    unstoppable = _add(smol4, tokens, _sampling(stop=(None,)))  # a stop that is not text
    empty = _add(smol4, [], _sampling())
    foreign = _add(smol4, [10**8], _sampling())
    for outcome in (seeded, unstoppable, empty, foreign):
        assert isinstance(outcome.wait().error, InvalidRequestError), outcome.error
    assert not any(o.done.is_set() for o in good)  # the bad ones were answered mid-generation
    _finished_normally(good)
    assert "seed" in str(seeded.error) and "empty" in str(empty.error) and "vocabulary" in str(foreign.error)
    assert _idle(smol4)


def test_a_request_whose_sampling_fails_mid_batch_ends_alone(smol4):
    good = _three_decoding(smol4)
    tokens = _prompt(smol4, "Tell me about rivers.")
    nan = _add(smol4, tokens, _sampling(temperature=float("nan")))  # NaN probabilities when sampled
    broken = _add(smol4, tokens, _sampling(), fail_on_text=True)  # its consumer raises at its text
    assert isinstance(nan.wait().error, InvalidRequestError)
    assert broken.wait().end is not None and broken.end[0] == "cancelled"
    _finished_normally(good)
    assert _idle(smol4)


def test_a_failed_decode_fails_the_batch_and_the_batcher_goes_on(smol4):
    """A token llama.cpp refuses, slipped past the checks, fails the decode of the whole batch:
    each request in it gets the error, none hangs, and the next requests run as usual."""
    victims = _three_decoding(smol4)
    poison = _add(smol4, [10**8], _sampling(), direct=True)
    for outcome in [*victims, poison]:
        assert isinstance(outcome.wait().error, BackendError) and "decode" in str(outcome.error)
    after = run(smol4.generate([Message.user("Say hello.")], max_tokens=8))
    assert after.usage.output_tokens == 8 and after.text
    assert _idle(smol4)


def test_backend_refuses_a_negative_seed_and_an_empty_prompt(smol4):
    with pytest.raises(InvalidRequestError, match="seed"):
        run(smol4.generate("Hi", max_tokens=3, seed=-1))
    with pytest.raises(InvalidRequestError, match="empty"):
        run(smol4.generate("", max_tokens=3))
    with pytest.raises(InvalidRequestError, match="surrogate"):
        run(smol4.generate("\ud800", max_tokens=3))
    assert run(smol4.generate("Hi", max_tokens=3, seed=2**62)).usage.output_tokens == 3


def test_engine_refuses_to_embed_an_empty_text(smollm2_path):
    from modelatlas.backends.llamacpp_engine import acquire_engine, release_engine

    engine = acquire_engine(smollm2_path, 512, None, embedding=True)
    try:
        with pytest.raises(InvalidRequestError, match="empty"):
            engine.submit(engine.embed, ["fine", ""]).result()
        vectors, tokens = engine.submit(engine.embed, ["hello"]).result()
        assert tokens == 1 and len(vectors[0]) > 100
    finally:
        release_engine(engine).result()  # on main, this freed a corrupt context: a double free


def _idle(model) -> bool:
    engine = model.backend.engine
    return engine.submit(lambda: engine.batcher(model.backend.options.parallel).idle).result()
