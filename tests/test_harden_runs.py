"""Issue 11, items 9, 13 (failed runs) and 14 (resume --limit, --samples): runs that are owned,
interrupted, failed or resumed, through real `modelatlas eval` subprocesses on echo models."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from typer.testing import CliRunner

from modelatlas.catalog import user
from modelatlas.catalog.records import ModelRecord
from modelatlas.cli.main import app
from modelatlas.errors import ConfigError
from modelatlas.evals import records
from modelatlas.evals.leaderboard import across_runs
from modelatlas.evals.types import ItemResult, Output, Score

cli = CliRunner()
SLOW = "test/slow"  # 0.4 s per one-word answer: a run of 20 items takes 8 s, long enough to race
FAST = "test/fast"
BROKEN = "test/broken"  # a 1-token context window: every answer is an error


@pytest.fixture
def models():
    user.add(ModelRecord(id=SLOW, backend="echo", options={"delay_s": 0.4}))
    user.add(ModelRecord(id=FAST, backend="echo"))
    user.add(ModelRecord(id=BROKEN, backend="echo", options={"context_length": 1}))


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "words.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"w{i}", "input": f"w{i}", "reference": f"w{i}"}) + "\n" for i in range(20))
    )
    return path


def _eval(data, *extra) -> list[str]:
    return [
        sys.executable,
        "-m",
        "modelatlas",
        "eval",
        str(data),
        "--metric",
        "exact_match",
        "--json",
        *extra,
    ]


def _db(home):
    return sqlite3.connect(home / "modelatlas.db")


def _count(home, run_id: str | None = None) -> int:
    try:
        con = _db(home)
        try:
            if run_id:
                return con.execute("SELECT COUNT(*) FROM run_items WHERE run_id = ?", (run_id,)).fetchone()[0]
            return con.execute("SELECT COUNT(*) FROM run_items").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def _start(home, data, at_least: int, *extra) -> tuple[subprocess.Popen, str]:
    """`modelatlas eval` on the slow model in a subprocess, once it stored ``at_least`` items."""
    proc = subprocess.Popen(
        _eval(data, "-m", SLOW, "--concurrency", "1", *extra),
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while _count(home) < at_least and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the test could race it: " + proc.stderr.read()[-2000:]
    con = _db(home)
    run_id = con.execute("SELECT id FROM runs").fetchone()[0]
    con.close()
    return proc, run_id


def _killed_run(home, data) -> str:
    """A run of 10 of the 20 items (--limit 10), killed with -9 after its third item."""
    proc, run_id = _start(home, data, 3, "--limit", "10")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 3 <= _count(home, run_id) < 10
    return run_id


def test_resume_of_a_live_run_is_refused_and_the_first_finishes(home, models, data):
    first, run_id = _start(home, data, 1)
    second = subprocess.run(
        _eval(data, "--resume", run_id), env=dict(os.environ), capture_output=True, text=True, timeout=60
    )
    assert first.poll() is None, "the first run must still be going while the second is refused"
    assert second.returncode == 2, second.stderr[-2000:]
    message = " ".join(second.stderr.split())  # rich wraps long lines
    assert f"Run {run_id} is still running (pid {first.pid} on host {socket.gethostname()}" in message
    assert f"kill {first.pid}" in message and "Traceback" not in second.stderr
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err[-2000:]
    assert json.loads(out)["status"] == "done"
    con = _db(home)
    keys = con.execute("SELECT item_id FROM run_items WHERE run_id = ?", (run_id,)).fetchall()
    owner_pid, status = con.execute("SELECT owner_pid, status FROM runs WHERE id = ?", (run_id,)).fetchone()
    con.close()
    assert len(keys) == 20 and len(set(keys)) == 20
    assert (owner_pid, status) == (first.pid, "done")


def test_killed_run_shows_interrupted_and_resume_without_limit_completes_it(home, models, data):
    run_id = _killed_run(home, data)
    listed = json.loads(cli.invoke(app, ["runs", "list", "--json"]).output)
    assert [(r["id"], r["status"]) for r in listed] == [(run_id, "interrupted")]
    assert listed[0]["params"]["limit"] == 10 and listed[0]["owner_host"] == socket.gethostname()
    shown = cli.invoke(app, ["runs", "show", run_id, "--json"])
    assert json.loads(shown.output)["status"] == "interrupted"
    table = cli.invoke(app, ["runs", "show", run_id], env={"COLUMNS": "200"})
    assert "Interrupted" in table.output and f"--resume {run_id}" in table.output
    # no --limit: the stored one (10) is used, so the dataset hash matches
    resumed = subprocess.run(
        _eval(data, "--resume", run_id), env=dict(os.environ), capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads(resumed.stdout)
    assert summary["status"] == "done" and summary["dataset"]["n"] == 10
    assert _count(home, run_id) == 10
    assert records.get_run(run_id).status == "done"


def test_resume_without_the_original_limit_reads_the_same_items(models, data):
    done = cli.invoke(
        app, ["eval", str(data), "-m", FAST, "--metric", "exact_match", "--limit", "3", "--json"]
    )
    assert done.exit_code == 0, done.output
    run_id = json.loads(done.output)["run_id"]
    again = cli.invoke(app, ["eval", str(data), "--resume", run_id, "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["dataset"]["n"] == 3


def test_storing_an_item_twice_keeps_the_first(models, data):
    run_id = json.loads(
        cli.invoke(
            app, ["eval", str(data), "-m", FAST, "--metric", "exact_match", "--limit", "1", "--json"]
        ).output
    )["run_id"]
    first = records.load_items(run_id)[0]
    again = ItemResult(
        run_id=run_id,
        model=first.model,
        strategy=first.strategy,
        item_id=first.item_id,
        index=first.index,
        output=Output(text="a later answer"),
        scores={"exact_match": Score(value=0.0)},
    )
    records.save_item(again)  # raised IntegrityError before
    records.save_item(again)
    stored = records.load_items(run_id)
    assert len(stored) == 1 and stored[0].output.text == first.output.text


def test_owner_on_another_host_is_judged_by_its_heartbeat(models, data):
    from modelatlas.evals import owner

    done = cli.invoke(
        app, ["eval", str(data), "-m", FAST, "--metric", "exact_match", "--limit", "1", "--json"]
    )
    run_id = json.loads(done.output)["run_id"]
    con = sqlite3.connect(os.environ["MODELATLAS_HOME"] + "/modelatlas.db")

    def owned(ago_s: float) -> None:
        beat = (datetime.now(UTC) - timedelta(seconds=ago_s)).strftime("%Y-%m-%d %H:%M:%S.%f")
        con.execute(
            "UPDATE runs SET status='running', owner_pid=1, owner_host='gpu-box-7', heartbeat_at=?"
            " WHERE id=?",
            (beat, run_id),
        )
        con.commit()

    owned(ago_s=5)
    assert records.get_run(run_id).status == "running"
    with pytest.raises(ConfigError, match="pid 1 on host gpu-box-7"):
        owner.check_free(run_id)
    owned(ago_s=owner.STALE_S + 60)
    assert records.get_run(run_id).status == "interrupted"
    owner.check_free(run_id)  # a stale owner holds nothing
    con.close()


def test_heartbeat_is_refreshed_while_the_run_goes(models, data, monkeypatch):
    import asyncio

    from modelatlas import evals
    from modelatlas.evals import owner
    from modelatlas.evals.plan import make_plan

    monkeypatch.setattr(owner, "HEARTBEAT_S", 0.2)
    plan = make_plan(str(data), [SLOW], metrics=["exact_match"], limit=10, concurrency=1)
    beats: set[str] = set()

    async def watch() -> None:
        task = asyncio.create_task(evals.evaluate(plan))
        while not task.done():
            await asyncio.sleep(0.1)
            beats.update(r.heartbeat_at for r in records.list_runs() if r.status == "running")
        await task

    asyncio.run(watch())
    assert len(beats) >= 3, beats  # 10 items of 0.4 s: about 20 beats, in 4 distinct seconds
    (run,) = records.list_runs()
    assert run.status == "done" and run.owner_pid == os.getpid()


def test_every_answer_failed_exits_non_zero_shows_failed_and_ranks_nowhere(models, data):
    good = cli.invoke(
        app, ["eval", str(data), "-m", FAST, "--metric", "exact_match", "--limit", "4", "--json"]
    )
    assert good.exit_code == 0, good.output
    bad = cli.invoke(app, ["eval", str(data), "-m", BROKEN, "--metric", "exact_match", "--limit", "4"])
    assert bad.exit_code == 1, bad.output
    assert "Every answer in run" in bad.output and "context" in bad.output.lower()
    listed = {r["id"]: r["status"] for r in json.loads(cli.invoke(app, ["runs", "list", "--json"]).output)}
    failed = next(run_id for run_id, status in listed.items() if status == "failed")
    assert sorted(listed.values()) == ["done", "failed"]
    assert json.loads(cli.invoke(app, ["runs", "show", failed, "--json"]).output)["status"] == "failed"
    assert "Failed: every answer was an error" in cli.invoke(app, ["runs", "show", failed]).output
    board = across_runs(None, "exact_match")
    assert [e.model_id for e in board.entries] == [FAST]
    terminal = cli.invoke(app, ["runs", "leaderboard"], env={"COLUMNS": "250"})
    assert FAST in terminal.output and BROKEN not in terminal.output and failed not in terminal.output


def test_samples_to_an_unwritable_path_is_refused_before_the_run(models, data, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for target, says in [
        (tmp_path / "missing" / "s.jsonl", "does not exist"),
        (blocker / "s.jsonl", "does not exist"),
        (tmp_path, "is a folder"),
    ]:
        result = cli.invoke(
            app, ["eval", str(data), "-m", FAST, "--metric", "exact_match", "--samples", str(target)]
        )
        assert result.exit_code == 2, result.output
        assert "--samples" in result.output and says in result.output
    assert records.list_runs() == [], "nothing runs when the samples cannot be written"


def test_studio_shows_interrupted_and_failed_runs_and_ranks_no_failed_one(home, models, data, studio):
    killed = _killed_run(home, data)
    cli.invoke(app, ["eval", str(data), "-m", FAST, "--metric", "exact_match", "--limit", "4"])
    cli.invoke(app, ["eval", str(data), "-m", BROKEN, "--metric", "exact_match", "--limit", "4"])
    failed = next(r.id for r in records.list_runs() if r.status == "failed")
    runs = httpx.get(f"{studio}/runs").text
    for run_id, status in [(killed, "interrupted"), (failed, "failed")]:
        row = runs.split(f'href="/runs/{run_id}"', 1)[1].split("</tr>", 1)[0]
        assert f"<td>{status}</td>" in row
    assert 'id="run-interrupted"' in httpx.get(f"{studio}/runs/{killed}").text
    assert 'id="run-failed"' in httpx.get(f"{studio}/runs/{failed}").text
    bench = httpx.get(f"{studio}/benchmarks", params={"metric": "exact_match"}).text
    assert f"/models/{FAST}" in bench and f"/models/{BROKEN}" not in bench and failed not in bench
