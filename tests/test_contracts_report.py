"""scripts/contracts_report.py finds what it claims to find: run on a tiny package built here,
with a known cycle, a known dict-returning function and a known backend-name check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "contracts_report.py"

LONG_BODY = "    x = 1\n" * 70

FILES = {
    "__init__.py": "",
    "config.py": "LIMIT = 3\n",
    # alpha <-> beta at module level (one of them relative)
    "alpha/__init__.py": "from tiny.beta import thing\n",
    "beta/__init__.py": "from ..alpha import other\nthing = 1\n",
    # gamma -> delta at module level, delta -> gamma only inside a function: a lazy cycle
    "gamma/__init__.py": "from tiny import delta\n",
    "delta/__init__.py": "def late():\n    from tiny.gamma import x\n    return x\n",
    # epsilon -> config only: no cycle
    "epsilon.py": "from tiny.config import LIMIT\n",
    "evals/__init__.py": "",
    "evals/summary.py": (
        "def run_summary(rows) -> dict[str, int]:\n"
        "    return {'n': len(rows)}\n\n"
        "def built(rows):\n"
        "    return dict(n=len(rows))\n\n"
        "def count(rows) -> int:\n"
        "    def inner():\n"
        "        return {}\n"
        "    return len(rows)\n"
    ),
    "cli/__init__.py": "",
    # 73 lines long, with a backend-name check (the same check inside backends/ does not count)
    "cli/show.py": "def show(record):\n    if record.backend == 'llamacpp':\n        return 1\n" + LONG_BODY,
    "backends/__init__.py": "def own(record):\n    return record.backend == 'llamacpp'\n",
}


def report(tmp_path: Path) -> dict:
    root = tmp_path / "tiny"
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(root), "--json"], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_finds_module_level_and_lazy_cycles(tmp_path):
    found = report(tmp_path)
    assert found["cycles_module_level"] == [["alpha", "beta"]]
    assert found["cycles_all_imports"] == [["alpha", "beta"], ["delta", "gamma"]]
    assert any(
        line.startswith("delta -> gamma [lazy] tiny/delta/__init__.py:2") for line in found["cycle_edges"]
    )


def test_finds_dict_returning_functions_but_not_nested_ones(tmp_path):
    found = report(tmp_path)
    assert found["dict_functions"] == [
        "tiny/evals/summary.py:1: run_summary",
        "tiny/evals/summary.py:4: built",
        "tiny/evals/summary.py:8: count.inner",
    ]
    assert "tiny/evals/summary.py:1: run_summary" in found["dict_result_functions"]


def test_finds_backend_checks_outside_backends_and_the_longest_function(tmp_path):
    found = report(tmp_path)
    assert found["backend_checks"] == ["tiny/cli/show.py:2: if record.backend == 'llamacpp':"]
    assert found["longest_functions"][0] == {"function": "show", "file": "tiny/cli/show.py", "lines": 73}


def test_text_table_prints_the_counts(tmp_path):
    report(tmp_path)
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "tiny")], capture_output=True, text=True, check=True
    ).stdout
    assert "| package cycles, module-level imports | 1 |" in out
    assert "| package cycles, all imports (lazy included) | 2 |" in out
    assert "alpha <-> beta" in out
