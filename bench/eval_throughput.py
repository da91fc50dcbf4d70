"""Evaluation throughput: `modelatlas eval` against a bare loop and lm-eval + llama-server, same items.

The items: the 40 questions of examples/edtech-support, each also asked "In one sentence: ..."
and "Briefly, ...", 120 distinct chat items (so no answer cache can serve one from another),
with the example's system prompt, greedy, the same max tokens. Every side runs as its own
process and is timed from start to exit (imports and model loads included):

- bare: a plain Python loop over llama-cpp-python's create_chat_completion, one item after
  another (llama-cpp-python keeps the previous prompt's KV cache, so the shared system prompt
  is decoded once there too);
- ours: the `modelatlas eval` command (prompt strategy, Model wrapper, response cache, scoring,
  one store write per item), cold (an empty home), then warm (the same run again: every answer
  cached; model loads and backend calls counted), then with the few-shot:3 strategy (its three
  examples repeated before every item: the prefix cache's case), cold;
- lm-eval: lm-evaluation-harness's `local-chat-completions` (num_concurrent 4) against
  llama.cpp's own `llama-server` (bench/llama_server.py builds it; -np 4, the same context per
  slot as ours), on a local JSONL task this script writes; the server is started and warm
  before lm-eval's clock starts.

Targets (issue 16): ours >= 1.5x the bare loop's speed, <= 0.6x lm-eval's wall time; the
warm re-run <= 0.05x the cold one with 0 model loads; few-shot:3 <= 1.2x zero-shot's time.

    python bench/eval_throughput.py [--repeat 3] [--max-tokens 48]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import llama_server

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "edtech-support"
MODEL = "local/smollm2-135m-instruct"
PREFIXES = ["", "In one sentence: ", "Briefly, "]
TASK = """task: bench_chat
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: generate_until
doc_to_text: "{{{{input}}}}"
doc_to_target: "{{{{reference}}}}"
generation_kwargs:
  until: []
  max_gen_toks: {max_tokens}
  do_sample: false
  temperature: 0
metric_list:
  - metric: exact_match
"""


def write_items(folder: Path, repeat: int) -> Path:
    questions = [json.loads(line) for line in (EXAMPLE / "test.jsonl").read_text().splitlines() if line]
    path = folder / "items.jsonl"
    with path.open("w") as out:
        for prefix in PREFIXES[:repeat]:
            for q in questions:
                text = prefix + (q["input"][0].lower() + q["input"][1:] if prefix else q["input"])
                out.write(
                    json.dumps({"id": f"{q['id']}-{len(prefix)}", "input": text, "reference": q["reference"]})
                    + "\n"
                )
    return path


# -- the children -------------------------------------------------------------------------------


def bare(items: Path, max_tokens: int) -> dict:
    import llama_cpp

    from modelatlas.catalog.bundled import resolve_bundled

    rows = [json.loads(line) for line in items.read_text().splitlines() if line]
    system = (EXAMPLE / "system.txt").read_text().strip()
    llm = llama_cpp.Llama(
        model_path=resolve_bundled(MODEL).location, n_ctx=8192, n_threads=os.cpu_count(), verbose=False
    )
    for row in rows:
        llm.create_chat_completion(
            messages=[{"role": "system", "content": system}, {"role": "user", "content": row["input"]}],
            max_tokens=max_tokens,
            temperature=0.0,
            top_k=1,
            seed=0,
        )
    return {"items": len(rows)}


def ours(items: Path, max_tokens: int, strategy: str) -> dict:
    """The eval command in this process, with its model loads and backend calls counted."""
    from modelatlas.backends import llamacpp_engine
    from modelatlas.backends.llamacpp import LlamaCppBackend
    from modelatlas.cli.main import app

    calls = {"n": 0}
    original = LlamaCppBackend.stream

    def counted(self, prompt, params):  # real backend calls; cache hits never get here
        calls["n"] += 1
        return original(self, prompt, params)

    LlamaCppBackend.stream = counted
    args = ["eval", str(items), "-m", MODEL, "--metric", "f1", "--max-tokens", str(max_tokens)]
    args += ["--system", f"@{EXAMPLE / 'system.txt'}", "--strategy", strategy, "--json"]
    args += ["--examples", str(EXAMPLE / "train.jsonl")]
    with contextlib.redirect_stdout(sys.stderr):
        try:
            app(args, standalone_mode=False)
        except SystemExit as exc:
            if exc.code:
                raise
    return {"backend_calls": calls["n"], "loads": llamacpp_engine.loads}


def child(side: str, home: Path, items: Path, max_tokens: int, strategy: str = "zero-shot") -> dict:
    env = {**os.environ, "MODELATLAS_HOME": str(home)}
    env.pop("MODELATLAS_DATABASE_URL", None)
    cmd = [sys.executable, __file__, "--side", side, "--items", str(items), "--max-tokens", str(max_tokens)]
    cmd += ["--strategy", strategy]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{side} failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "seconds": seconds}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lm_eval_side(folder: Path, items: Path, max_tokens: int, threads: int) -> dict:
    """lm-eval's local-chat-completions against a warm llama-server, timed from lm-eval's start."""
    from modelatlas.backends.llamacpp_batch import MAX_CELLS
    from modelatlas.backends.llamacpp_engine import DEFAULT_MAX_CTX, trained_context
    from modelatlas.catalog.bundled import resolve_bundled

    tasks = folder / "tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / "bench_chat.yaml").write_text(TASK.format(path=items, max_tokens=max_tokens))
    path = resolve_bundled(MODEL).location
    per_slot = min(min(trained_context(path) or DEFAULT_MAX_CTX, DEFAULT_MAX_CTX), MAX_CELLS // 4)
    port = free_port()
    server = ["-m", path, "-c", str(per_slot * 4), "-np", "4", "-t", str(threads), "-tb", str(threads)]
    server += ["--no-webui"]
    system = (EXAMPLE / "system.txt").read_text().strip()
    model_args = f"model=smollm2,base_url=http://127.0.0.1:{port}/v1/chat/completions,num_concurrent=4"
    model_args += ",max_retries=1,tokenized_requests=False"
    cmd = [sys.executable, "-m", "lm_eval", "run", "--model", "local-chat-completions"]
    cmd += ["--model_args", model_args, "--tasks", "bench_chat", "--include_path", str(tasks)]
    cmd += ["--apply_chat_template", "--system_instruction", system, "--output_path", str(folder / "lm_eval")]
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    env["HF_DATASETS_CACHE"] = str(folder / "datasets")
    with llama_server.running(server, port, folder / "llama-server.log"):
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"lm-eval failed:\n{done.stderr[-3000:]}")
    return {"seconds": seconds}


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, choices=[1, 2, 3], help="40 items per repeat")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--side", choices=["bare", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--items", help=argparse.SUPPRESS)
    parser.add_argument("--strategy", default="zero-shot", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        items = Path(args.items)
        result = (
            bare(items, args.max_tokens)
            if args.side == "bare"
            else ours(items, args.max_tokens, args.strategy)
        )
        print(json.dumps(result))
        return
    llama_server.binary(say=progress)
    folder = Path(tempfile.mkdtemp(prefix="modelatlas-bench-eval-"))
    items = write_items(folder, args.repeat)
    n = sum(1 for _ in items.open())
    progress(f"{n} items in {items}; bare loop")
    base = child("bare", folder / "home-bare", items, args.max_tokens)
    progress("modelatlas eval, cold")
    cold = child("ours", folder / "home", items, args.max_tokens)
    progress("modelatlas eval, warm")
    warm = child("ours", folder / "home", items, args.max_tokens)
    progress("modelatlas eval few-shot:3, cold")
    few = child("ours", folder / "home", items, args.max_tokens, "few-shot:3")
    progress("lm-eval + llama-server")
    theirs = lm_eval_side(folder, items, args.max_tokens, args.threads)
    print(f"{MODEL}, {n} chat items, max_tokens {args.max_tokens}, greedy; wall time of each process")
    print(f"  (llama-server: {llama_server.binary()}, llama-cpp-python {llama_server.version()}'s llama.cpp)")
    for name, side in (
        ("bare llama-cpp-python loop", base),
        ("modelatlas eval, cold", cold),
        ("modelatlas eval, warm", warm),
        ("modelatlas eval few-shot:3, cold", few),
        ("lm-eval + llama-server (-np 4)", theirs),
    ):
        counts = (
            f"backend calls {side['backend_calls']}, model loads {side['loads']}" if "loads" in side else ""
        )
        print(f"{name:34s} {side['seconds']:7.2f} s  {counts}")
    print("  (lm-eval's clock starts with llama-server already up and warm)")
    speed = base["seconds"] / cold["seconds"]
    share = cold["seconds"] / theirs["seconds"]
    warm_share = warm["seconds"] / cold["seconds"]
    few_share = few["seconds"] / cold["seconds"]
    target("speed vs the bare loop (bare / ours)", speed, speed >= 1.5, ">= 1.5")
    target("wall time vs lm-eval (ours / lm-eval)", share, share <= 0.6, "<= 0.6")
    ok = warm_share <= 0.05 and warm["loads"] == 0 and warm["backend_calls"] == 0
    target("warm / cold", warm_share, ok, "<= 0.05 with 0 loads, 0 calls")
    target("few-shot:3 / zero-shot", few_share, few_share <= 1.2, "<= 1.2")


def target(label: str, value: float, ok: bool, bound: str) -> None:
    print(f"{label + ':':40s} {value:6.3f}  target {bound}  {verdict(ok)}")


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


if __name__ == "__main__":
    main()
