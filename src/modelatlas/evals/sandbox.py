"""Run an untrusted Python program (a model's code and its tests) in a confined child process.

Each program runs in a fresh interpreter (``sys.executable -I``, started with ``subprocess``, not
a fork of this process's state), whose bootstrap (:mod:`modelatlas.evals.sandbox_boot`) confines
itself before the program's first line. What is refused, and how (see that module for details):

- **time**: a wall-clock timeout, after which the whole process group is killed (SIGKILL), and a
  CPU-seconds limit (``RLIMIT_CPU``) a little above it;
- **memory**: the address space is capped at ``memory_mb`` (``RLIMIT_AS``): a blow-up is a
  MemoryError or a kill, never this machine swapping;
- **files**: the program runs in a fresh temporary folder (removed after). Writing, creating,
  removing or renaming anything outside it is refused by the kernel where Landlock is available
  (Linux 5.13+), else by Python-level wrappers of ``open`` and the ``os`` file functions (which
  ctypes could bypass). Each file, stdout and stderr included, is capped at 16 MB (``RLIMIT_FSIZE``).
  Reading is not confined: the program can read what this user can.
- **network**: a new network namespace with no interface up (as root, or with unprivileged user
  namespaces); else Landlock's TCP rules; else socket constructors that raise (bypassable);
- **processes**: no new process or thread (``RLIMIT_NPROC`` 0, which the kernel does not apply to
  root) and ``os.fork``/``subprocess`` and the like replaced by functions that raise; signals to
  processes outside the sandbox refused by Landlock (ABI 6+), else ``os.kill`` is guarded;
- **secrets**: the environment holds only PATH, LANG, HOME and TMPDIR (both the work folder) and
  thread-count settings; nothing of this process's (no API keys). stdin is empty.

:func:`protections` says which of these mechanisms apply on this machine. Nothing the program
does raises here: every end is an :class:`Execution`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

__all__ = ["Execution", "protections", "run_program", "run_program_sync"]

Status = Literal["passed", "failed", "timeout", "crashed", "syntax_error"]
BOOT = Path(__file__).with_name("sandbox_boot.py")
FILE_MB = 16  # the most any file the program writes may hold, its stdout and stderr included
TAIL = 2000  # characters of stderr kept in a crash's detail
ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


@dataclass(frozen=True)
class Execution:
    """How a program ended: ``passed`` (its last line ran), ``failed`` (it raised, e.g. a test's
    AssertionError), ``timeout``, ``crashed`` (a signal, an exit, out of memory) or
    ``syntax_error``; ``detail`` says what happened in one line or a few."""

    status: Status
    detail: str
    duration_s: float

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def run_program_sync(
    source: str, *, timeout_s: float = 10.0, memory_mb: int = 1024, kernel: bool = True
) -> Execution:
    """Run ``source`` in the sandbox and wait for it (at most ``timeout_s`` plus a moment).

    ``kernel=False`` leaves out the network namespace and Landlock, so that only the Python-level
    guards confine the program: for testing those guards, not for use."""
    start = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="modelatlas-sandbox-"))
    try:
        status, detail = _execute(source, root, timeout_s, memory_mb, probe=False, kernel=kernel)
    except UnicodeEncodeError:  # a lone surrogate: no file (and no compiler) takes it
        status, detail = "syntax_error", "the program holds characters that are not valid Unicode"
    except OSError as exc:  # the child could not be started: this machine's problem, said as such
        status, detail = "crashed", f"the sandbox could not start the program: {exc}"
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return Execution(status, detail, round(time.perf_counter() - start, 4))


_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _gate() -> asyncio.Semaphore:
    """One semaphore per event loop (a semaphore belongs to the loop it first waited on)."""
    loop = asyncio.get_running_loop()
    if loop not in _gates:
        _gates[loop] = asyncio.Semaphore(os.cpu_count() or 1)
    return _gates[loop]


async def run_program(source: str, *, timeout_s: float = 10.0, memory_mb: int = 1024) -> Execution:
    """:func:`run_program_sync` in a worker thread; at most one program per CPU at once."""
    async with _gate():
        return await asyncio.to_thread(run_program_sync, source, timeout_s=timeout_s, memory_mb=memory_mb)


@cache
def protections() -> dict[str, str]:
    """Which mechanism confines each thing on this machine: ``network`` (network namespace,
    user and network namespace, landlock tcp or socket guard), ``files`` (landlock or open
    guard), ``signals`` (landlock or kill guard). Found by running the bootstrap once."""
    root = Path(tempfile.mkdtemp(prefix="modelatlas-sandbox-"))
    try:
        status, detail = _execute("", root, 10.0, 256, probe=True, kernel=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if status != "passed":
        return {"error": detail}
    return json.loads(detail)


def _execute(
    source: str, root: Path, timeout_s: float, memory_mb: int, probe: bool, kernel: bool
) -> tuple[str, str]:
    work = root / "work"
    work.mkdir()
    program = work / "program.py"
    program.write_text(source, encoding="utf-8")
    nonce = secrets.token_hex(16)
    config = {
        "nonce": nonce,
        "work": str(work),
        "program": str(program),
        "memory_mb": memory_mb,
        "cpu_s": int(timeout_s) + 2,
        "file_mb": FILE_MB,
        "probe": probe,
        "kernel": kernel,
    }
    with (
        (root / "verdict").open("w+b") as verdict,
        (root / "stdout").open("wb") as stdout,
        (root / "stderr").open("w+b") as stderr,
    ):
        config["verdict_fd"] = verdict.fileno()
        child = subprocess.Popen(
            [sys.executable, "-I", str(BOOT)],
            stdin=subprocess.PIPE,
            stdout=stdout,
            stderr=stderr,
            pass_fds=(verdict.fileno(),),
            cwd=work,
            env={**ENV, "HOME": str(work), "TMPDIR": str(work)},
            start_new_session=True,  # its own process group, killed whole on timeout
        )
        timed_out = _wait(child, json.dumps(config).encode(), timeout_s)
        return _classify(child.returncode, timed_out, _read(verdict, nonce), _tail(stderr), timeout_s)


def _wait(child: subprocess.Popen, config: bytes, timeout_s: float) -> bool:
    """Send the settings, wait; on timeout kill the process group. Whether it timed out."""
    try:
        assert child.stdin is not None
        child.stdin.write(config)
        child.stdin.close()
    except OSError:
        pass  # it died before reading: its exit status says why
    try:
        child.wait(timeout=timeout_s)
        return False
    except subprocess.TimeoutExpired:
        _kill(child)
        return True
    finally:
        _kill_group(child.pid)  # anything it left behind in its group


def _kill(child: subprocess.Popen) -> None:
    _kill_group(child.pid)
    with contextlib.suppress(OSError):
        child.kill()
    child.wait()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _read(verdict, nonce: str) -> dict | None:
    verdict.seek(0)
    for line in verdict.read(64 * 1024).decode("utf-8", "replace").splitlines():
        given, _, body = line.partition(" ")
        if secrets.compare_digest(given, nonce):
            try:
                return json.loads(body)
            except json.JSONDecodeError:
                return None
    return None


def _tail(stderr) -> str:
    stderr.seek(0, os.SEEK_END)
    size = stderr.tell()
    stderr.seek(max(0, size - TAIL))
    return stderr.read().decode("utf-8", "replace").strip()


def _classify(code: int | None, timed_out: bool, verdict: dict | None, tail: str, timeout_s: float):
    """The program's end, from what the bootstrap reported, else from its exit status."""
    if timed_out:
        return "timeout", f"still running after {timeout_s:g} s: killed"
    if verdict is not None and verdict.get("status") in ("passed", "failed", "crashed", "syntax_error"):
        return verdict["status"], str(verdict.get("detail", ""))
    last = tail.splitlines()[-1] if tail else ""
    if code is not None and code < 0:
        name = _signal_name(-code)
        if -code == signal.SIGXCPU:
            return "timeout", f"CPU time limit reached ({name})"
        if -code == signal.SIGXFSZ:
            return "crashed", f"a file or its output passed {FILE_MB} MB ({name})"
        return "crashed", f"killed by {name}" + (f": {last}" if last else "")
    return "crashed", f"exited with status {code} before its tests finished" + (f": {last}" if last else "")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
