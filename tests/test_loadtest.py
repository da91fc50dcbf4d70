"""`modelatlas loadtest` against real servers on 127.0.0.1: our own `modelatlas serve` and
llama.cpp's `python -m llama_cpp.server`. What the load test counted (requests, tokens) must
equal what each server counted itself: serve's /metrics counters, and llama_cpp.server's access
log and llama.cpp's per-request decode counts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from modelatlas.errors import ConfigError
from modelatlas.loadtest import parse_duration, parse_levels, run_loadtest
from tests.conftest import run
from tests.servers import free_port, llama_cpp_server_args, modelatlas_serve, python_server

pytestmark = pytest.mark.slow

CHAT = "local/smollm2-135m-instruct"
# Long answers of plain ASCII, so that every one runs to max_tokens (finish "length") with one
# token per streamed chunk: llama.cpp then decodes max_tokens - 1 tokens after the prompt, which
# its log counts as "runs".
ASKS = [
    "Count from 1 to 100, separated by commas.",
    "Count down from 100 to 1, separated by commas.",
    "List the even numbers from 2 to 200, separated by commas.",
    "Write the numbers from 50 to 150, separated by commas.",
]
MAX_TOKENS = 8


@pytest.fixture
def prompts_file(tmp_path) -> Path:
    path = tmp_path / "prompts.jsonl"
    rows = [{"id": f"p{i}", "input": ask} for i, ask in enumerate(ASKS)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _counter(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"{name}\{{(.*)\}} (\S+)$", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            total += float(match.group(2))
    return total


def _check_levels(report, levels: list[int]) -> None:
    assert [lv.concurrency for lv in report.levels] == levels
    for lv in report.levels:
        assert lv.requests >= lv.concurrency and lv.errors == 0 and lv.succeeded == lv.requests
        for p in (lv.ttft_ms, lv.e2e_ms, lv.itl_ms):
            assert p.p50 is not None and 0 < p.p50 <= p.p95 <= p.p99
        assert lv.ttft_ms.p50 < lv.e2e_ms.p50
        assert lv.tokens_per_s > 0 and lv.stream_tokens_per_s.p50 > 0
        # Aggregate throughput is the level's output over its wall time: recompute it.
        assert lv.tokens_per_s == pytest.approx(lv.output_tokens / lv.duration_s)


def test_counts_equal_the_counters_of_modelatlas_serve(tmp_path, prompts_file):
    with modelatlas_serve(tmp_path, ["--model", CHAT, "--no-auth", "--parallel", "2"]) as base:
        report, warmup = run(run_loadtest(CHAT, prompts_file, [1, 2], 2.0, MAX_TOKENS, base_url=base + "/v1"))
        metrics = httpx.get(base + "/metrics").text
    _check_levels(report, [1, 2])
    chat = {"endpoint": "/v1/chat/completions", "model": CHAT}
    sent = sum(lv.requests for lv in report.levels) + 1  # the warm-up request
    assert _counter(metrics, "modelatlas_requests_total", **chat, status="200") == sent
    assert _counter(metrics, "modelatlas_output_tokens_total", model=CHAT) == (
        sum(lv.output_tokens for lv in report.levels) + warmup.output_tokens
    )
    assert _counter(metrics, "modelatlas_input_tokens_total", model=CHAT) == (
        sum(lv.input_tokens for lv in report.levels) + warmup.input_tokens
    )
    assert all(lv.no_usage == 0 for lv in report.levels)


def _llama_cpp_server(smollm2_path: str, log: Path, *extra: str):
    pytest.importorskip("sse_starlette", reason="needs llama-cpp-python[server]")
    port = free_port()
    args = llama_cpp_server_args(smollm2_path, port, *extra)
    return port, python_server(args, port, ready_path="/v1/models", log_path=str(log))


def test_counts_equal_llama_cpp_servers_own_log(tmp_path, prompts_file, smollm2_path):
    """llama_cpp.server sends no usage in a stream, so the load test counts streamed text chunks
    as tokens (and says so); its log has a line per request and llama.cpp's count of tokens
    decoded for each. Requests wait their turn (``--interrupt_requests False``; the default is
    the next test's). The request count matches exactly. The token count cannot: llama-cpp-python
    streams one chunk per token except that, at max_tokens, the last token can go unsent (seen
    by hand: 7 chunks where the same request unstreamed reports 8 tokens), and llama.cpp sometimes
    decodes one token more than it sends (8 runs for 8 tokens). So the two differ by at most one
    per request."""
    log = tmp_path / "server.log"
    port, server = _llama_cpp_server(smollm2_path, log, "--interrupt_requests", "False")
    with server:
        report, warmup = run(
            run_loadtest(
                "smollm2", prompts_file, [1, 2], 2.0, MAX_TOKENS, base_url=f"http://127.0.0.1:{port}"
            )
        )
    _check_levels(report, [1, 2])
    text = log.read_text(errors="replace")
    answered = len(re.findall(r'"POST /v1/chat/completions HTTP/1.1" 200', text))
    runs = [int(n) for n in re.findall(r"\beval time =.*?/\s*(\d+) runs", text)]
    assert answered == sum(lv.requests for lv in report.levels) + 1 == len(runs)
    assert all(lv.no_usage == lv.requests for lv in report.levels)  # it sent no usage
    # An answer that ran to max_tokens: its first token came from the prompt, the rest are runs.
    decoded = sum(r + 1 for r in runs)
    chunks = sum(lv.output_tokens for lv in report.levels) + warmup.output_tokens
    assert abs(decoded - chunks) <= len(runs)
    assert chunks <= MAX_TOKENS * len(runs)


def test_answers_cut_off_by_llama_cpp_servers_interruptions_count_as_errors(
    tmp_path, prompts_file, smollm2_path
):
    """By default llama_cpp.server interrupts a stream when the next request comes: the stream
    that loses answers 200 with no text. At concurrency 2 the load test counts those as errors,
    with a message that says so, instead of as fast successes."""
    port, server = _llama_cpp_server(smollm2_path, tmp_path / "server.log")
    with server:
        report, _ = run(
            run_loadtest("smollm2", prompts_file, [2], 2.0, MAX_TOKENS, base_url=f"http://127.0.0.1:{port}")
        )
    level = report.levels[0]
    assert level.errors > 0 and level.succeeded > 0
    assert any("no text" in message for message in level.error_examples)


def test_a_local_model_is_served_for_the_test_and_the_cli_prints_a_table(tmp_path, prompts_file):
    from typer.testing import CliRunner

    from modelatlas.cli.main import app

    out = tmp_path / "load.json"
    args = ["loadtest", CHAT, "-d", str(prompts_file), "-c", "1,2", "--duration", "1s", "--max-tokens", "6"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "TTFT ms" in result.output and "p50/p95/p99" in result.output and "127.0.0.1" in result.output
    assert all(len(line) <= 80 for line in result.output.splitlines())
    saved = json.loads(out.read_text())
    assert [lv["concurrency"] for lv in saved["levels"]] == [1, 2]
    assert saved["levels"][0]["requests"] >= 1 and saved["levels"][0]["errors"] == 0


def test_errors_are_counted_not_raised(tmp_path, prompts_file):
    """A server that refuses every request (an unknown model name): each request is an error
    with the server's message, and nothing raises."""
    with modelatlas_serve(tmp_path, ["--model", CHAT, "--no-auth"]) as base:
        report, warmup = run(
            run_loadtest("local/no-such-model", prompts_file, [2], 0.5, 4, base_url=base, max_requests=6)
        )
    level = report.levels[0]
    assert warmup.status == 404 and level.requests == 6 and level.errors == 6 and level.succeeded == 0
    assert level.error_rate == 1.0 and "no-such-model" in level.error_examples[0]
    assert report.note and "warm-up" in report.note


def test_bad_options_say_what_to_write():
    with pytest.raises(ConfigError, match="1,4,16"):
        parse_levels("1,four")
    with pytest.raises(ConfigError, match="60s"):
        parse_duration("soon")
    assert parse_levels("1, 4,16") == [1, 4, 16]
    assert parse_duration("2m") == 120 and parse_duration("1.5s") == 1.5 and parse_duration("30") == 30


def test_a_hosted_model_over_budget_sends_nothing(prompts_file):
    """The cost bound (every answer max_tokens long) is checked before any request: a priced
    hosted model with a tiny budget is refused with what to change; no key is needed to refuse."""
    with pytest.raises(ConfigError, match="budget") as caught:
        run(run_loadtest("openai/gpt-4.1", prompts_file, [1, 4], 10.0, 512, budget_usd=0.0001))
    assert "--max-requests" in caught.value.hint
