"""Overhead of the Model wrapper: tokens/s through modelatlas against llama-cpp-python called directly.

Same GGUF file, same prompts, same sampling (greedy), same token budget, same run. Each side
runs in its own child process (two llama.cpp OpenMP thread teams in one process slow each
other down, which would hide the overhead), and the children alternate so that machine noise
hits both sides alike. Target: ratio >= 0.95.

    python bench/overhead.py [--rounds 6] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time

from modelatlas.catalog.bundled import resolve_bundled
from modelatlas.loading import load_model
from modelatlas.types import Message

PROMPTS = [
    "Explain what a hash table is.",
    "Write a short poem about autumn leaves.",
    "List three uses of copper.",
    "Why do cats purr?",
]
MODEL = "local/smollm2-135m-instruct"


def direct_round(llm, max_tokens: int) -> tuple[int, float]:
    """llama-cpp-python's own chat API, streamed, as a user would call it."""
    tokens, start = 0, time.perf_counter()
    for prompt in PROMPTS:
        out = llm.create_chat_completion(
            messages=[{"role": "user", "content": prompt}],
            max_tokens=max_tokens,
            temperature=0.0,
            top_k=1,
            seed=0,
        )
        tokens += out["usage"]["completion_tokens"]
    return tokens, time.perf_counter() - start


async def wrapped_round(model, max_tokens: int) -> tuple[int, float]:
    tokens, start = 0, time.perf_counter()
    for prompt in PROMPTS:
        out = await model.generate([Message.user(prompt)], max_tokens=max_tokens, temperature=0.0)
        tokens += out.usage.output_tokens
    return tokens, time.perf_counter() - start


def measure(side: str, rounds: int, max_tokens: int) -> list[float]:
    """Tokens/s of ``rounds`` rounds on one side, in this process, after one warm-up round."""
    model = load_model(MODEL)
    asyncio.run(model.load())
    if side == "direct":
        import llama_cpp

        threads = model.backend.engine.llm.context_params.n_threads  # the same on both sides
        path, n_ctx = resolve_bundled(MODEL).location, model.context_length
        del model  # the direct side holds only its own llama.cpp instance
        llm = llama_cpp.Llama(model_path=path, n_ctx=n_ctx, n_batch=512, n_threads=threads, verbose=False)

        def one_round():
            return direct_round(llm, max_tokens)
    else:

        def one_round():
            return asyncio.run(wrapped_round(model, max_tokens))

    one_round()
    rates = []
    for _ in range(rounds):
        n, seconds = one_round()
        rates.append(n / seconds)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="alternating runs of each side")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--side", choices=["direct", "wrapped"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:  # child process: one side only, so each side's llama.cpp thread team runs alone
        print(json.dumps(measure(args.side, 2, args.max_tokens)))
        return

    names = {"direct": "llama-cpp-python direct", "wrapped": "modelatlas Model"}
    rates: dict[str, list[float]] = {"direct": [], "wrapped": []}
    for _ in range(args.rounds):
        for side in ("direct", "wrapped"):
            cmd = [sys.executable, __file__, "--side", side, "--max-tokens", str(args.max_tokens)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rates[side] += json.loads(done.stdout.strip().splitlines()[-1])

    print(
        f"model: {MODEL}  prompts: {len(PROMPTS)}  max_tokens: {args.max_tokens}  "
        f"runs: {args.rounds} alternating processes per side, 2 rounds each"
    )
    for side, values in rates.items():
        print(
            f"{names[side]:26s} median {statistics.median(values):7.1f} tok/s  "
            f"(min {min(values):.1f}, max {max(values):.1f})"
        )
    ratio = statistics.median(rates["wrapped"]) / statistics.median(rates["direct"])
    verdict = "OK" if ratio >= 0.95 else "BELOW TARGET"
    print(f"ratio (modelatlas / direct): {ratio:.3f}  target >= 0.95  {verdict}")


if __name__ == "__main__":
    main()
