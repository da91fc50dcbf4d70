"""Start and stop real servers on 127.0.0.1 for tests: free ports, readiness, stop by pid."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from modelatlas import processes


def free_port() -> int:
    return processes.free_port()


def wait_for_http(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    """Stop a server we started, by its process id (never by name)."""
    processes.stop_process(proc, grace_s=10)


@contextlib.contextmanager
def python_server(
    args: list[str],
    port: int,
    ready_path: str = "/",
    timeout: float = 120.0,
    log_path: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen]:
    """Run ``python ARGS...`` as a server on ``port`` until the block ends (``env``: its
    environment, default this process's)."""
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_http(f"http://127.0.0.1:{port}{ready_path}", proc, timeout)
        yield proc
    finally:
        stop(proc)
        if log_path:
            log.close()


def llama_cpp_server_args(model_path: str, port: int, *extra: str) -> list[str]:
    """``python`` arguments for llama-cpp-python's ``llama_cpp.server`` serving ``model_path``
    as "smollm2" on 127.0.0.1:``port`` (context 2048, 2 threads), plus ``extra``."""
    args = [
        "-m",
        "llama_cpp.server",
        "--model",
        model_path,
        "--model_alias",
        "smollm2",
        "--host",
        "127.0.0.1",
    ]
    return [*args, "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", *extra]


def home_env(home: str | os.PathLike, **extra: str) -> dict[str, str]:
    """This process's environment with MODELATLAS_HOME at ``home``: its database the SQLite file
    there (a PostgreSQL URL the suite may have set is left out), plus ``extra``."""
    env = {**os.environ, "MODELATLAS_HOME": str(home), **extra}
    env.pop("MODELATLAS_DATABASE_URL", None)
    return env


def new_key(home: str | os.PathLike, name: str, **limits: Any) -> str:
    """A new key's secret in the database under ``home``, with ``limits`` (create_key's rpm,
    tpm, budget_usd, models, expires_at). Made in this process: a CLI run costs a second, and
    `modelatlas keys create` has tests of its own."""
    from modelatlas.store.keys import create_key

    saved = {name: os.environ.get(name) for name in ("MODELATLAS_HOME", "MODELATLAS_DATABASE_URL")}
    os.environ["MODELATLAS_HOME"] = str(home)
    os.environ.pop("MODELATLAS_DATABASE_URL", None)
    try:
        return create_key(name, **limits)[1]
    finally:
        for variable, value in saved.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value


@contextlib.contextmanager
def modelatlas_serve(
    folder: Path, args: list[str], env: dict[str, str] | None = None, timeout: float = 120.0
) -> Iterator[str]:
    """`modelatlas serve ARGS` on a free port until the block ends; its home is folder/home
    (``env``: its environment, default home_env of that), its log folder/server.log. Yields
    the base URL."""
    port = free_port()
    env = env if env is not None else home_env(folder / "home")
    argv = ["-m", "modelatlas", "serve", "--port", str(port), *args]
    log = str(folder / "server.log")
    with python_server(argv, port, ready_path="/health", timeout=timeout, log_path=log, env=env):
        yield f"http://127.0.0.1:{port}"
