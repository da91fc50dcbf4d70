"""GET /metrics (Prometheus text) of `modelatlas serve`, run as a real subprocess on 127.0.0.1."""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.servers import free_port, python_server

openai = pytest.importorskip("openai")

CHAT = "local/smollm2-135m-instruct"
EMBED = "local/all-minilm-l6-v2"
BASE = "local/gemma-3-270m"  # served, never used here: its gauge stays 0
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"')


def start(folder, extra: list[str]):
    port = free_port()
    env = {**os.environ, "MODELATLAS_HOME": str(folder / "home")}
    env.pop("MODELATLAS_DATABASE_URL", None)
    args = ["-m", "modelatlas", "serve", "--port", str(port), *extra]
    log = str(folder / "server.log")
    return python_server(args, port, ready_path="/health", log_path=log, env=env), f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    models = ["--model", CHAT, "--model", EMBED, "--model", BASE]
    running, url = start(tmp_path_factory.mktemp("metrics"), ["--no-auth", *models])
    with running:
        yield url


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)


def scrape(server: str) -> dict[tuple, float]:
    """Every sample: (name, sorted label pairs) -> value."""
    response = httpx.get(f"{server}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in response.text.splitlines():
        if not line or line.startswith("#"):
            continue
        found = SAMPLE.match(line)
        assert found, f"not a Prometheus sample: {line!r}"
        name, labels, value = found.groups()
        pairs = tuple(sorted(LABEL.findall(labels or "")))
        samples[(name, pairs)] = float(value)
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def ask(text: str = "Say hello.") -> list[dict]:
    return [{"role": "user", "content": text}]


def test_requests_and_tokens_are_counted(server, client):
    before = scrape(server)
    answer = client.chat.completions.create(model=CHAT, messages=ask(), max_tokens=6, temperature=0)
    stream = client.chat.completions.create(
        model=CHAT,
        messages=ask("Count to five."),
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    streamed = [c for c in stream][-1].usage
    vectors = client.embeddings.create(model=EMBED, input=["one", "two"])
    missing = httpx.post(f"{server}/v1/chat/completions", json={"model": "local/nope", "messages": ask()})
    assert missing.status_code == 404
    after = scrape(server)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    chat = {"endpoint": "/v1/chat/completions", "model": CHAT}
    assert delta("modelatlas_requests_total", **chat, status="200") == 2
    assert delta("modelatlas_requests_total", endpoint="/v1/chat/completions", model="", status="404") == 1
    assert delta("modelatlas_requests_total", endpoint="/v1/embeddings", model=EMBED, status="200") == 1
    prompt = answer.usage.prompt_tokens + streamed.prompt_tokens
    assert delta("modelatlas_input_tokens_total", model=CHAT) == prompt
    assert delta("modelatlas_output_tokens_total", model=CHAT) == (
        answer.usage.completion_tokens + streamed.completion_tokens
    )
    assert delta("modelatlas_input_tokens_total", model=EMBED) == vectors.usage.prompt_tokens
    assert delta("modelatlas_request_duration_seconds_count", **chat) == 2


def test_latency_histogram_is_cumulative_and_covers_whole_streams(server):
    body = {"model": CHAT, "messages": ask("Tell a long story."), "max_tokens": 48, "stream": True}
    before = scrape(server)
    with httpx.stream("POST", f"{server}/v1/chat/completions", json=body, timeout=120) as response:
        lines = response.iter_lines()
        next(lines)
        first = time.perf_counter()
        rest = [line for line in lines if line]
        span = time.perf_counter() - first  # from the first event to the last one
    assert rest[-1] == "data: [DONE]"
    after = scrape(server)
    labels = {"endpoint": "/v1/chat/completions", "model": CHAT}
    seconds = value(after, "modelatlas_request_duration_seconds_sum", **labels) - value(
        before, "modelatlas_request_duration_seconds_sum", **labels
    )
    assert seconds >= span * 0.9
    buckets = sorted(
        (float(dict(pairs)["le"]), n)
        for (name, pairs), n in after.items()
        if name == "modelatlas_request_duration_seconds_bucket"
        and dict(pairs).get("model") == CHAT
        and dict(pairs)["endpoint"] == "/v1/chat/completions"
    )
    counts = [n for _, n in buckets]
    assert counts == sorted(counts) and buckets[-1][0] == float("inf")
    assert counts[-1] == value(after, "modelatlas_request_duration_seconds_count", **labels)


def test_queue_depth_and_loaded_models(server, client):
    long = ask("Write a long story about a dragon and a knight.")
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(client.chat.completions.create, model=CHAT, messages=long, max_tokens=120)
        depths = []
        while not answer.done():  # poll while the request holds its slot
            depths.append(value(scrape(server), "modelatlas_queue_depth", model=CHAT))
        assert answer.result().usage.completion_tokens > 0
    assert max(depths) == 1
    samples = scrape(server)
    assert value(samples, "modelatlas_queue_depth", model=CHAT) == 0
    assert ("modelatlas_queue_depth", (("model", EMBED),)) in samples
    assert value(samples, "modelatlas_model_loaded", model=CHAT) == 1
    assert value(samples, "modelatlas_model_loaded", model=BASE) == 0
    assert ("modelatlas_model_loaded", (("model", BASE),)) in samples
    assert value(samples, "modelatlas_loaded_memory_gb") > 0


def test_metrics_need_no_api_key(tmp_path):
    running, url = start(tmp_path, ["--model", CHAT])  # authentication on
    with running:
        assert httpx.get(f"{url}/v1/models").status_code == 401
        response = httpx.get(f"{url}/metrics")
        assert response.status_code == 200
        assert "modelatlas_requests_total" in response.text
        assert 'endpoint="/v1/models",model="",status="401"' in response.text
