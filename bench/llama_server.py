"""llama.cpp's own C++ server, the baseline of bench/serve.py and bench/eval_throughput.py.

Built once from the llama.cpp that the installed llama-cpp-python vendors: pip downloads that
version's source distribution, cmake builds the ``llama-server`` target from its
``vendor/llama.cpp`` (statically linked, no libcurl, with the same compiler flags the Makefile
gives llama-cpp-python: the AMX instructions left out where the CPU lists them), and the binary
is cached under ``~/.cache/modelatlas/llama-server/<version>/``. About 6 minutes on 2 cores the
first time; afterwards it is found at once.

    python bench/llama_server.py          # builds if needed, prints the binary's path
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from modelatlas.processes import stop_process

NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "modelatlas" / "llama-server"


def version() -> str:
    return importlib.metadata.version("llama_cpp_python")


def binary(say=print) -> Path:
    """The path of ``llama-server`` for the installed llama-cpp-python, built if not cached."""
    target = cache_dir() / version() / "llama-server"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llama-server-build-") as tmp:
        work = Path(tmp)
        say(f"building llama-server from llama-cpp-python {version()}'s vendored llama.cpp (once, ~6 min)")
        source = _download(work)
        built = _build(source, work / "build")
        partial = target.with_suffix(".partial")
        shutil.copy2(built, partial)
        partial.replace(target)  # a build cut off half-way leaves no binary behind
    say(f"llama-server cached at {target}")
    return target


def _download(work: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", f"llama-cpp-python=={version()}"]
    cmd += ["--no-deps", "--no-binary", ":all:", "--quiet", "-d", str(work)]
    subprocess.run(cmd, check=True)
    archive = next(work.glob("llama_cpp_python-*.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    return next(work.glob("llama_cpp_python-*/vendor/llama.cpp"))


def _flags() -> list[str]:
    with contextlib.suppress(OSError):
        if "amx_tile" in Path("/proc/cpuinfo").read_text():
            return [f"-DCMAKE_C_FLAGS={NO_AMX}", f"-DCMAKE_CXX_FLAGS={NO_AMX}"]
    return []


def _build(source: Path, build: Path) -> Path:
    configure = ["cmake", "-S", str(source), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"]
    configure += ["-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF"]
    configure += ["-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_TOOLS=ON", *_flags()]
    subprocess.run(configure, check=True, stdout=subprocess.DEVNULL)
    jobs = str(os.cpu_count() or 1)
    subprocess.run(["cmake", "--build", str(build), "--target", "llama-server", "-j", jobs], check=True)
    return build / "bin" / "llama-server"


@contextlib.contextmanager
def running(args: list[str], port: int, log: Path) -> Iterator[subprocess.Popen]:
    """``llama-server ARGS`` on 127.0.0.1:``port`` until the block ends (its process)."""
    cmd = [str(binary()), *args, "--host", "127.0.0.1", "--port", str(port)]
    with serving(cmd, f"http://127.0.0.1:{port}/health", log) as proc:
        yield proc


@contextlib.contextmanager
def serving(
    cmd: list[str], ready: str, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """The server ``cmd`` (its process) until the block ends, from when ``ready`` answers 200;
    stopped by its pid (SIGTERM, then SIGKILL after 15 s)."""
    with open(log, "wb") as out:
        # stdin a pipe held open: with stdin at its end (/dev/null), llama-server shut itself
        # down after a request or two here ("cleaning up before exit")
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 180
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{Path(cmd[0]).name} exited early; see {log}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(ready, timeout=1.0).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{Path(cmd[0]).name} did not start; see {log}")
                time.sleep(0.2)
            yield proc
        finally:
            stop_process(proc)


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


if __name__ == "__main__":
    print(binary(say=lambda message: print(message, file=sys.stderr)))
