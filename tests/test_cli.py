"""The CLI, through typer's runner and as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from typer.testing import CliRunner

from modelatlas.cli.main import app

runner = CliRunner()


def cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelatlas", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "models", "demo"):
        assert command in result.output


def test_help_is_fast_because_heavy_libraries_are_lazy():
    code = (
        "import sys, time; t = time.perf_counter(); from modelatlas.cli.main import app; "
        "heavy = [m for m in ('torch', 'transformers', 'llama_cpp', 'sqlalchemy', 'openai') "
        "if m in sys.modules]; print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    start = time.perf_counter()
    assert cli("--help").returncode == 0
    # Generous bound for a loaded CI machine; bench-level timing is not a test's job.
    assert time.perf_counter() - start < 5


def test_models_list_shows_the_bundled_models():
    result = runner.invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    ids = {m["id"] for m in json.loads(result.output)}
    assert {"local/smollm2-135m-instruct", "local/gemma-3-270m", "local/all-minilm-l6-v2"} <= ids


def test_models_add_list_remove_an_endpoint():
    added = runner.invoke(app, ["models", "add", "ollama/llama3.2"])
    assert added.exit_code == 0, added.output
    listed = json.loads(runner.invoke(app, ["models", "list", "--json"]).output)
    record = next(m for m in listed if m["id"] == "ollama/llama3.2")
    assert record["backend"] == "openai"
    assert record["options"]["base_url"] == "http://127.0.0.1:11434/v1"
    assert runner.invoke(app, ["models", "remove", "ollama/llama3.2"]).exit_code == 0
    gone = runner.invoke(app, ["models", "remove", "ollama/llama3.2"])
    assert gone.exit_code == 2


def test_models_add_unknown_provider_needs_a_base_url():
    result = runner.invoke(app, ["models", "add", "acme/model-x"])
    assert result.exit_code == 2
    assert "--base-url" in result.output


def test_run_unknown_model_exits_2_with_did_you_mean():
    result = runner.invoke(app, ["run", "local/smolm2-135m", "hi"])
    assert result.exit_code == 2
    assert "Did you mean" in result.output and "local/smollm2-135m-instruct" in result.output


def test_run_missing_api_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert runner.invoke(app, ["models", "add", "openai/gpt-4.1-mini"]).exit_code == 0
    result = runner.invoke(app, ["run", "openai/gpt-4.1-mini", "hi"])
    assert result.exit_code == 2
    assert "OPENAI_API_KEY" in result.output


def test_run_json_through_the_runner():
    result = runner.invoke(
        app, ["run", "local/smollm2-135m-instruct", "Name a fruit.", "--json", "--max-tokens", "12"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["text"].strip()
    assert data["usage"]["input_tokens"] > 0 and 0 < data["usage"]["output_tokens"] <= 12
    assert data["latency_s"] > 0 and data["ttft_s"] is not None and data["cost_usd"] == 0.0


def test_run_streams_as_a_subprocess(home):
    done = cli(
        "run",
        "local/smollm2-135m-instruct",
        "Say hello.",
        "--max-tokens",
        "16",
        env={"MODELATLAS_HOME": str(home)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert "tok/s" in done.stderr and "local/smollm2-135m-instruct" in done.stderr


def test_run_prompt_too_long_fails_clearly(home, smollm2_path):
    added = runner.invoke(app, ["models", "add", "my/smol-tiny", "--path", smollm2_path])
    assert added.exit_code == 0, added.output
    # A registered file model uses the default context; ask for more tokens than it holds.
    result = runner.invoke(app, ["run", "my/smol-tiny", "hello", "--max-tokens", "100000"])
    assert result.exit_code == 2
    assert "maximum context length" in result.output


def test_run_on_a_corrupt_gguf_path_fails_clearly(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"\x00" * 1024)
    done = cli("run", str(bad), "hi")
    assert done.returncode == 2
    assert "not a GGUF file" in done.stderr


def test_embedding_model_refuses_run():
    result = runner.invoke(app, ["run", "local/all-minilm-l6-v2", "hi"])
    assert result.exit_code == 2
    assert "embedding model" in result.output
