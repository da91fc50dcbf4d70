"""Issue 11, item 14: bad input and a broken environment give a clear error, never a traceback.

Every case runs the real CLI in a subprocess (`python -m modelatlas ...`) with a home folder of
its own, and checks the exit code, the message and that no traceback reached the user.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

from modelatlas.errors import MissingExtraError


def cli(*args: str, home, env: dict[str, str] | None = None, timeout: float = 120):
    """Run `python -m modelatlas ARGS` and return (exit code, stdout + stderr)."""
    environ = {**os.environ, "MODELATLAS_HOME": str(home), "COLUMNS": "200"}
    environ.pop("MODELATLAS_DATABASE_URL", None)
    environ.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "modelatlas", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
    )
    return done.returncode, done.stdout + done.stderr


def assert_clear(code: int, output: str, *needles: str, exit_code: int = 2) -> None:
    assert "Traceback" not in output, output
    assert code == exit_code, output
    for needle in needles:
        assert needle in output, output


# --- a. catalog sync on bad data ----------------------------------------------------------


def test_sync_of_deeply_nested_json_is_a_clear_error(tmp_path, home):
    source = tmp_path / "deep.json"
    depth = 100_000  # far beyond the parser's recursion limit
    source.write_text('{"p": {"models": {"m": {"name": ' + "[" * depth + "]" * depth + "}}}}")
    code, out = cli("catalog", "sync", "--source", str(source), home=home)
    assert_clear(code, out, "nested too deeply", "is kept")


def _api(model: dict, provider: dict | None = None) -> dict:
    return {"acme": {"name": "Acme", **(provider or {}), "models": {"rocket-1": {"name": "Rocket", **model}}}}


@pytest.mark.parametrize(
    ("model", "provider", "field"),
    [
        ({"limit": 5}, None, "field limit: expected an object, got int 5"),
        ({"limit": {"context": "big"}}, None, "field limit.context"),
        ({"modalities": {"input": "text"}}, None, "field modalities.input: expected a list"),
        ({"modalities": ["text"]}, None, "field modalities: expected an object"),
        ({"weights": [5]}, None, "field weights: expected a list of objects"),
        ({"benchmarks": {"mmlu": 1}}, None, "field benchmarks: expected a list"),
        ({"cost": {"input": "cheap"}}, None, "field cost.input"),
        ({"tool_call": "maybe"}, None, "field tool_call"),
        ({}, {"env": "ACME_KEY"}, "provider 'acme': field env"),
    ],
)
def test_sync_type_errors_name_the_field_and_the_model(tmp_path, home, model, provider, field):
    source = tmp_path / "api.json"
    source.write_text(json.dumps(_api(model, provider)))
    code, out = cli("catalog", "sync", "--source", str(source), home=home)
    where = "acme" if provider else "acme/rocket-1"
    assert_clear(code, out, where, field)


# --- b. negative counts and limits ----------------------------------------------------------


M = ["-m", "local/smollm2-135m-instruct"]


# Bounded before issue 11 (kept as guards): eval/improve --limit, catalog search --limit,
# rag --k, runs list --limit, serve --queue-size. Unbounded before: the others.
@pytest.mark.parametrize(
    ("option", "args"),
    [
        ("--limit", ["eval", "data.jsonl", *M, "--limit", "-1"]),
        ("--k", ["eval", "data.jsonl", *M, "--k", "-3"]),
        ("--price-per-hour", ["eval", "data.jsonl", *M, "--price-per-hour", "-1"]),
        ("--limit", ["catalog", "search", "--limit", "-5"]),
        ("--max-price", ["catalog", "search", "--max-price", "-1"]),
        ("--rpm", ["keys", "create", "k1", "--rpm", "-1"]),
        ("--tpm", ["keys", "create", "k2", "--tpm", "-10"]),
        ("--budget", ["keys", "create", "k3", "--budget", "-2"]),
        ("--k", ["rag", "search", "kb", "hello", "--k", "-1"]),
        ("--limit", ["runs", "list", "--limit", "-1"]),
        (
            "--context-length",
            ["models", "add", "acme/x", "--base-url", "http://127.0.0.1:9/v1", "--context-length", "-5"],
        ),
        (
            "--price-input",
            ["models", "add", "acme/x", "--base-url", "http://127.0.0.1:9/v1", "--price-input", "-1"],
        ),
        ("--lr", ["improve", "--dataset", "data.jsonl", *M, "--lr", "-1"]),
        ("--price-per-hour", ["improve", "--dataset", "data.jsonl", *M, "--price-per-hour", "-1"]),
        ("--queue-size", ["serve", "--queue-size", "-1"]),
    ],
    ids=lambda v: v if isinstance(v, str) else v[0],
)
def test_negative_counts_and_limits_exit_2(home, option, args):
    code, out = cli(*args, home=home)
    assert_clear(code, out, f"Invalid value for '{option}'", "greater than or equal to")


@pytest.mark.parametrize("value", ["-5", "0", "lots", "k"])
def test_a_bad_min_context_says_how_to_write_one(home, value):
    """--min-context takes token counts as people write them (32k, 1M), so typer no longer
    bounds it; a value that is no positive count is refused with examples."""
    code, out = cli("catalog", "search", "--min-context", value, home=home)
    assert_clear(code, out, "--min-context must be a number of tokens", "32k")


# --- c. a bad rate window -------------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan"])
def test_bad_rate_window_is_a_config_error_naming_the_variable(home, value):
    code, out = cli(
        "serve", "--model", "local/smollm2-135m-instruct", "--port", "9", home=home,
        env={"MODELATLAS_RATE_WINDOW_S": value},
    )  # fmt: skip
    assert_clear(code, out, f"MODELATLAS_RATE_WINDOW_S={value!r}", "Set it to a number of seconds")


# --- d. a database URL whose driver is not installed --------------------------------------


def test_postgresql_url_without_its_driver_gives_the_pip_command(home):
    assert importlib.util.find_spec("pg8000") is None, "this test needs pg8000 to be absent"
    url = "postgresql+pg8000://atlas:s3cret@127.0.0.1:9/atlas"
    code, out = cli("keys", "list", home=home, env={"MODELATLAS_DATABASE_URL": url})
    assert_clear(code, out, "needs the Python package 'pg8000'", "pip install pg8000", "psycopg[binary]")
    assert "s3cret" not in out  # the password never reaches the terminal


def test_postgresql_url_names_psycopg_when_no_driver_is_given(home):
    if importlib.util.find_spec("psycopg") is not None:
        pytest.skip("psycopg is installed here")
    url = "postgresql://atlas@127.0.0.1:9/atlas"
    code, out = cli("keys", "list", home=home, env={"MODELATLAS_DATABASE_URL": url})
    assert_clear(code, out, "pip install 'psycopg[binary]'")


def test_unreadable_database_url_is_a_clear_error(home):
    code, out = cli("keys", "list", home=home, env={"MODELATLAS_DATABASE_URL": "nonsense"})
    assert_clear(code, out, "cannot be read", "MODELATLAS_DATABASE_URL")


# --- e. a backend whose dependency is missing ---------------------------------------------

BLOCK_NUMPY = textwrap.dedent(
    """
    import runpy, sys

    class BlockNumpy:  # numpy as if it were not installed
        def find_spec(self, name, path=None, target=None):
            if name == "numpy" or name.startswith("numpy."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, BlockNumpy())
    sys.argv = ["modelatlas", *sys.argv[1:]]
    runpy.run_module("modelatlas", run_name="__main__")
    """
)


def test_missing_numpy_names_the_pip_command_for_the_extra(tmp_path, home):
    script = tmp_path / "block_numpy.py"
    script.write_text(BLOCK_NUMPY)
    env = {**os.environ, "MODELATLAS_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, str(script), "run", "local/smollm2-135m-instruct", "hi", "--max-tokens", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    out = done.stdout + done.stderr
    # A missing optional dependency has its own exit code (3), distinct from bad input (2).
    assert_clear(
        done.returncode,
        out,
        "'numpy'",
        "pip install 'modelatlas[local]'",
        exit_code=MissingExtraError.exit_code,
    )
