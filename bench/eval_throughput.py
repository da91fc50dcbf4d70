"""Evaluation throughput: `modelatlas eval` against a bare loop over llama-cpp-python, same items.

Baseline: a plain Python loop that sends each item's chat to llama-cpp-python's
create_chat_completion, greedy, same max tokens, same system prompt. Ours: the full harness
(prompt strategy, Model wrapper, response cache lookups and writes, scoring, one store write
per item). Each side runs in its own child process (two llama.cpp thread teams in one process
slow each other down). Targets: items/s ratio >= 0.9; a warm-cache re-run at most 0.05x of the
cold wall time, with zero backend calls.

    python bench/eval_throughput.py [--limit 40] [--max-tokens 48]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "edtech-support" / "test.jsonl"
MODEL = "local/smollm2-135m-instruct"


def bare(limit: int, max_tokens: int) -> dict:
    import llama_cpp

    from modelatlas.catalog.bundled import resolve_bundled
    from modelatlas.evals.datasets import load_dataset

    items = load_dataset(DATA, limit=limit).items
    system = (DATA.parent / "system.txt").read_text().strip()
    llm = llama_cpp.Llama(
        model_path=resolve_bundled(MODEL).location, n_ctx=8192, n_threads=os.cpu_count(), verbose=False
    )
    start = time.perf_counter()
    for item in items:
        llm.create_chat_completion(
            messages=[{"role": "system", "content": system}, {"role": "user", "content": item.input}],
            max_tokens=max_tokens,
            temperature=0.0,
            top_k=1,
            seed=0,
        )
    return {"seconds": time.perf_counter() - start, "items": len(items)}


def ours(limit: int, max_tokens: int) -> dict:
    from modelatlas import evals
    from modelatlas.backends.llamacpp import LlamaCppBackend
    from modelatlas.evals.plan import make_plan

    calls = {"n": 0}
    original = LlamaCppBackend.stream

    def counted(self, prompt, params):  # counts real backend calls; cache hits never get here
        calls["n"] += 1
        return original(self, prompt, params)

    LlamaCppBackend.stream = counted
    system = (DATA.parent / "system.txt").read_text().strip()
    plan = make_plan(str(DATA), [MODEL], metrics=["f1"], limit=limit, system=system, max_tokens=max_tokens)
    start = time.perf_counter()
    asyncio.run(evals.evaluate(plan))
    return {"seconds": time.perf_counter() - start, "items": plan.dataset.n, "backend_calls": calls["n"]}


def child(side: str, home: str, limit: int, max_tokens: int) -> dict:
    env = {**os.environ, "MODELATLAS_HOME": home}
    cmd = [sys.executable, __file__, "--side", side, "--limit", str(limit), "--max-tokens", str(max_tokens)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--side", choices=["bare", "ours"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        result = (bare if args.side == "bare" else ours)(args.limit, args.max_tokens)
        print(json.dumps(result))
        return
    home = tempfile.mkdtemp(prefix="modelatlas-bench-")
    base = child("bare", home, args.limit, args.max_tokens)
    cold = child("ours", home, args.limit, args.max_tokens)
    warm = child("ours", home, args.limit, args.max_tokens)
    rate_base, rate_cold = base["items"] / base["seconds"], cold["items"] / cold["seconds"]
    print(f"{MODEL}, {base['items']} items of {DATA.name}, max_tokens {args.max_tokens}")
    print(f"bare llama-cpp-python loop   {base['seconds']:7.2f} s  {rate_base:6.2f} items/s")
    print(
        f"modelatlas eval (cold cache) {cold['seconds']:7.2f} s  {rate_cold:6.2f} items/s  "
        f"backend calls {cold['backend_calls']}"
    )
    print(f"modelatlas eval (warm cache) {warm['seconds']:7.2f} s  backend calls {warm['backend_calls']}")
    ratio, warm_share = rate_cold / rate_base, warm["seconds"] / cold["seconds"]
    verdict = "OK" if ratio >= 0.9 else "BELOW TARGET"
    print(f"throughput ratio (ours / bare): {ratio:.3f}  target >= 0.9  {verdict}")
    ok = warm_share <= 0.05 and warm["backend_calls"] == 0
    verdict = "OK" if ok else "ABOVE TARGET"
    print(f"warm / cold wall time: {warm_share:.3f}  target <= 0.05 with 0 calls  {verdict}")


if __name__ == "__main__":
    main()
