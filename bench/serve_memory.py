"""Peak memory of `modelatlas serve --parallel 4` against an earlier revision of modelatlas.

Each side is a `modelatlas serve` process on the bundled SmolLM2 (registered as bench/smollm2
with the context and threads bench/serve.py uses), started from a source tree with the same
virtual environment, warmed up, then given ``--rounds`` rounds of bench/serve.py's 4 prompts
streamed at once (128 tokens, greedy). Its peak resident memory (VmHWM, which covers llama.cpp's
buffers in the same process) is read before it is stopped by its pid. The baseline side runs a
git worktree of ``--baseline`` (a commit; default the last one before issue 16's work), with
``--baseline-path`` put first on its PYTHONPATH (for example a directory holding the
llama-cpp-python build that revision was measured with). The sides alternate, ``--runs`` each.
Target: current / baseline <= 1.10.

    .venv/bin/python bench/serve_memory.py [--baseline REV] [--baseline-path DIR] [--runs 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import llama_server
import serve

ROOT = Path(__file__).resolve().parents[1]
BEFORE_ISSUE_16 = "427fe74"


def peak(src: Path, extra_path: str | None, rounds: int, home: Path) -> float:
    """Peak RSS (MiB) of one serve process from source tree ``src``."""
    env, secret = serve.prepare_home(home, os.cpu_count() or 1)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, str(src / "src")) if p)
    port = serve.free_port()
    args = serve.ours_args(port, True, 4)
    server = serve.Server(
        "serve", f"http://127.0.0.1:{port}/v1", serve.SERVED, {"Authorization": f"Bearer {secret}"}
    )
    with serve.running(args, port, "/health", home / "serve.log", env) as proc:
        asyncio.run(serve.streams(server, 128, together=False))  # warm-up
        for _ in range(rounds):
            asyncio.run(serve.streams(server, 128, together=True))
        return llama_server.peak_rss_mib(proc.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BEFORE_ISSUE_16)
    parser.add_argument("--baseline-path", default=None)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="modelatlas-bench-memory-"))
    old = work / "baseline"
    git = ["git", "-C", str(ROOT), "worktree"]
    subprocess.run([*git, "add", "--detach", str(old), args.baseline], check=True, capture_output=True)
    sides = {"current": (ROOT, None), f"baseline {args.baseline}": (old, args.baseline_path)}
    found: dict[str, list[float]] = {name: [] for name in sides}
    try:
        for run in range(args.runs):
            for side, (name, (src, extra)) in enumerate(sides.items()):
                serve.progress(f"run {run + 1}: {name}")
                found[name].append(peak(src, extra, args.rounds, work / f"home-{run}-{side}"))
    finally:
        subprocess.run([*git, "remove", "--force", str(old)], check=False)
    print(f"`modelatlas serve --parallel 4`, bundled SmolLM2, {args.rounds} rounds of 4 streams x 128 tokens")
    print(f"{'peak RSS, MiB':40s} {'median':>8s} {'runs'}")
    for name, values in found.items():
        print(f"{name:40s} {statistics.median(values):8.1f} {values}")
    now, before = (statistics.median(v) for v in found.values())
    serve.target("current / baseline", now / before, "<=", 1.10)


if __name__ == "__main__":
    sys.exit(main())
