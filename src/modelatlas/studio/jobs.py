"""Jobs: an evaluation started from the studio runs as `python -m modelatlas eval ...` in its own
process, on the same home folder. Its state lives in the store (the `studio_jobs` row, and the
run's items as they finish), so the page that shows it can be reloaded, or the studio restarted.
Progress is read on each request: the run's stored items, and whether the process still lives.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from modelatlas.config import settings
from modelatlas.errors import ConfigError, ModelAtlasError
from modelatlas.processes import pid_alive
from modelatlas.store import jobs as store
from modelatlas.studio.playground import error_message, problem, read_json, text_model_ids
from modelatlas.studio.web import render

KIND = "eval"
TAIL_LINES = 20
router = APIRouter()
_processes: dict[str, subprocess.Popen] = {}


class EvalRequest(BaseModel):
    """An evaluation to start: a dataset file on this machine, models, metrics (default: by dataset)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str
    models: list[str]
    metrics: list[str] = Field(default_factory=list)
    limit: int | None = Field(None, ge=1)
    name: str | None = None


def start_eval(req: EvalRequest) -> store.Job:
    """Record the job and start its process; the job fails at once if the process cannot start."""
    dataset = Path(req.dataset.strip()).expanduser()
    models = [m.strip() for m in req.models if m.strip()]
    if not dataset.is_file():
        raise ConfigError(f"No dataset file at {dataset}.", hint="Give the path of a JSONL or CSV file here.")
    if not models:
        raise ConfigError("Pick at least one model to evaluate.")
    params = {**req.model_dump(), "dataset": str(dataset.resolve()), "models": models}
    job = store.create_job(KIND, params)
    out, err = log_paths(job.id)
    try:
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                eval_command(job), stdout=stdout, stderr=stderr, env=_env(), start_new_session=True
            )
    except OSError as exc:
        return store.update_job(job.id, status="failed", error=f"Could not start the evaluation: {exc}")
    _processes[job.id] = process
    return store.update_job(job.id, status="running", pid=process.pid)


def eval_command(job: store.Job) -> list[str]:
    """The `modelatlas eval` command line of a job."""
    params = job.params
    command = [sys.executable, "-m", "modelatlas", "eval", params["dataset"], "--json"]
    command += [arg for m in params["models"] for arg in ("--model", m)]
    command += [arg for m in params.get("metrics") or [] for arg in ("--metric", m)]
    if params.get("limit"):
        command += ["--limit", str(params["limit"])]
    return [*command, "--run-name", run_name(job)]


def run_name(job: store.Job) -> str:
    """The name of the job's run: the one asked for, or one made from the job's id."""
    name = (job.params.get("name") or "").strip()
    return name or f"studio {job.id}"


def log_paths(job_id: str) -> tuple[Path, Path]:
    folder = settings().ensure_home() / "jobs"
    folder.mkdir(exist_ok=True)
    return folder / f"{job_id}.out", folder / f"{job_id}.err"


def job_state(job_id: str) -> store.Job | None:
    """The job as it stands now: progress from its run's stored items, finished when its process is."""
    job = store.get_job(job_id)
    if job is None or job.finished or job.status == "queued":
        return job
    ended, code = _ended(job)  # first: the run read after it is final when the process has ended
    changes: dict[str, Any] = {}
    run = store.find_run(run_name(job), job.created_at)
    if run is not None:
        run_id, run_status, total = run
        changes = {"run_id": run_id, "total": total, "done": min(store.items_done(run_id), total)}
    if ended:
        if run is not None and run_status == "done" and code in (0, None):
            changes.update(status="done", done=changes["total"])
        else:
            changes.update(status="failed", error=_failure(job.id, code))
        _processes.pop(job.id, None)
    if all(getattr(job, k) == v for k, v in changes.items()):
        return job
    return store.update_job(job.id, **changes)


def _ended(job: store.Job) -> tuple[bool, int | None]:
    """Whether the job's process has ended, and its exit code when this studio started it."""
    process = _processes.get(job.id)
    if process is not None:
        code = process.poll()
        return code is not None, code
    if job.pid is None:
        return True, None
    try:
        cmdline = Path(f"/proc/{job.pid}/cmdline").read_bytes()
    except OSError:
        return not pid_alive(job.pid), None
    return b"modelatlas" not in cmdline, None  # the id now belongs to another program


def _failure(job_id: str, code: int | None) -> str:
    try:
        lines = log_paths(job_id)[1].read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        lines = []
    tail = "\n".join(lines[-TAIL_LINES:])
    said = f" (exit code {code})" if code is not None else ""
    return f"The evaluation stopped before it finished{said}." + (f"\n{tail}" if tail else "")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["MODELATLAS_HOME"] = str(settings().home)
    return env


def job_json(job: store.Job) -> dict[str, Any]:
    data = {k: getattr(job, k) for k in ("id", "kind", "status", "done", "total", "run_id", "error")}
    data["params"] = job.params
    data["run_url"] = f"/runs/{job.run_id}" if job.run_id else None
    data["created_at"] = job.created_at.isoformat(timespec="seconds") if job.created_at else None
    data["finished_at"] = job.finished_at.isoformat(timespec="seconds") if job.finished_at else None
    return data


def _form_models(picked: list[str], other: str) -> list[str]:
    extra = [m.strip() for m in other.replace("\n", ",").split(",") if m.strip()]
    return list(dict.fromkeys([*picked, *extra]))


def _jobs_page(request: Request, error: str | None = None, form: dict | None = None, status: int = 200):
    from modelatlas.evals.metrics import metric_names

    jobs = [job_state(j.id) for j in store.list_jobs(limit=20, kind=KIND)]
    return render(
        request,
        "jobs.html",
        status_code=status,
        jobs=jobs,
        choices=text_model_ids(),
        metrics=metric_names(),
        error=error,
        form=form or {},
    )


@router.get("/jobs")
def jobs_page(request: Request):
    return _jobs_page(request)


@router.post("/jobs")
async def jobs_submit(request: Request):
    """The form of the jobs page (url-encoded: no multipart parser needed)."""
    fields = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    one = {k: (v[-1] if v else "") for k, v in fields.items()}
    form = {**one, "models": fields.get("models", []), "metrics": fields.get("metrics", [])}
    try:
        limit = one.get("limit", "").strip()
        if limit and (not limit.isdigit() or int(limit) < 1):
            raise ConfigError(f"The item limit must be a whole number above 0, not {limit!r}.")
        req = EvalRequest(
            dataset=one.get("dataset", ""),
            models=_form_models(form["models"], one.get("other_models", "")),
            metrics=form["metrics"],
            limit=int(limit) if limit else None,
            name=one.get("name") or None,
        )
        job = start_eval(req)
    except (ModelAtlasError, ValueError) as exc:
        return _jobs_page(request, error=error_message(exc), form=form, status=400)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: str):
    from starlette.exceptions import HTTPException

    job = job_state(job_id)
    if job is None:
        raise HTTPException(404, f"No job {job_id!r}. The jobs page lists them all.")
    return render(request, "job.html", job=job, run_name=run_name(job))


@router.post("/api/jobs", status_code=201)
async def api_start(request: Request):
    try:
        job = start_eval(await read_json(request, EvalRequest))
    except ModelAtlasError as exc:
        return problem(exc)
    return job_json(job)


@router.get("/api/jobs")
def api_list():
    return {"jobs": [job_json(job_state(j.id)) for j in store.list_jobs(limit=50, kind=KIND)]}


@router.get("/api/jobs/{job_id}")
def api_job(job_id: str):
    job = job_state(job_id)
    if job is None:
        return JSONResponse({"error": f"No job {job_id!r}."}, status_code=404)
    return job_json(job)
