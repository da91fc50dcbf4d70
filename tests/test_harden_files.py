"""Issue 11, item 15 (files): reports honour the umask and refuse a missing folder; the home
folder and the database (prompts, answers, votes) are private to their owner.

Everything runs through the real CLI in a subprocess, with the umask set for that process.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from modelatlas.catalog import user
from modelatlas.catalog.records import ModelRecord


def cli(*args: str, home, umask: int = 0o022, timeout: float = 120):
    """Run `python -m modelatlas ARGS` under ``umask``; returns (exit code, stdout + stderr)."""
    env = {**os.environ, "MODELATLAS_HOME": str(home), "COLUMNS": "200"}
    env.pop("MODELATLAS_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "modelatlas", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        preexec_fn=lambda: os.umask(umask),
    )
    return done.returncode, done.stdout + done.stderr


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def dataset(tmp_path, home):
    """A three-item dataset and an echo model registered in the home."""
    user.add(ModelRecord(id="test/echo", backend="echo"))
    path = tmp_path / "qa.jsonl"
    rows = [{"id": f"q{i}", "input": f"say {i}", "reference": f"say {i}"} for i in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _eval(dataset, home, *extra: str, umask: int = 0o022):
    args = ["eval", str(dataset), "-m", "test/echo", "--metric", "exact_match", "--json", *extra]
    return cli(*args, home=home, umask=umask)


@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o027, 0o640)])
def test_reports_samples_and_exports_honour_the_umask(tmp_path, home, dataset, umask, expected):
    report, samples = tmp_path / "report.html", tmp_path / "samples.jsonl"
    code, out = _eval(dataset, home, "--report", str(report), "--samples", str(samples), umask=umask)
    assert code == 0, out
    assert mode(report) == expected and mode(samples) == expected
    run_id = json.loads(out[out.index("{") :])["run_id"]
    for fmt in ("json", "jsonl", "csv"):
        target = tmp_path / f"export.{fmt}"
        code, out = cli("runs", "export", run_id, "--format", fmt, "-o", str(target), home=home, umask=umask)
        assert code == 0, out
        assert mode(target) == expected, fmt


def test_a_replaced_report_keeps_its_mode(tmp_path, home, dataset):
    samples = tmp_path / "samples.jsonl"
    samples.write_text("old\n")
    samples.chmod(0o600)  # the owner made it private: rewriting it must not widen it
    code, out = _eval(dataset, home, "--samples", str(samples))
    assert code == 0, out
    assert mode(samples) == 0o600 and samples.read_text() != "old\n"


def test_a_missing_folder_is_refused_not_created(tmp_path, home, dataset):
    code, out = _eval(dataset, home)
    run_id = json.loads(out[out.index("{") :])["run_id"]
    missing = tmp_path / "no" / "such" / "folder"
    code, out = cli("runs", "export", run_id, "--format", "csv", "-o", str(missing / "x.csv"), home=home)
    assert code == 2 and "Traceback" not in out, out
    assert "does not exist" in out and "mkdir -p" in out
    code, out = _eval(dataset, home, "--samples", str(missing / "s.jsonl"))
    assert code == 2 and "Traceback" not in out, out
    assert "does not exist" in out
    assert not (tmp_path / "no").exists()


def test_home_is_0700_and_the_database_0600_after_first_use(home):
    assert not home.exists()
    code, out = cli("keys", "create", "first", home=home, umask=0o022)
    assert code == 0, out
    assert mode(home) == 0o700
    db = home / "modelatlas.db"
    assert mode(db) == 0o600
    assert all(mode(p) & 0o077 == 0 for p in home.iterdir()), {p.name: oct(mode(p)) for p in home.iterdir()}


def test_wal_and_shm_files_are_private_too(home):
    from sqlalchemy import text

    from modelatlas.store.db import engine

    code, out = cli("keys", "create", "first", home=home)
    assert code == 0, out
    with engine().connect() as conn:  # WAL and SHM exist while a connection is open
        conn.execute(text("SELECT count(*) FROM api_keys")).scalar()
        wal, shm = home / "modelatlas.db-wal", home / "modelatlas.db-shm"
        assert wal.exists() and shm.exists()
        assert mode(wal) == 0o600 and mode(shm) == 0o600


def test_a_home_that_exists_keeps_its_mode(home):
    home.mkdir(mode=0o750)
    home.chmod(0o750)
    code, out = cli("keys", "create", "first", home=home)
    assert code == 0, out
    assert mode(home) == 0o750 and mode(home / "modelatlas.db") == 0o600
