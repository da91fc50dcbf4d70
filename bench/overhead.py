"""Overhead of the Model wrapper: tokens/s through modelatlas against llama-cpp-python called directly.

Same GGUF file, same prompts, same sampling (greedy), same number of new tokens, same process,
interleaved rounds so that machine noise hits both sides alike. Target: ratio >= 0.95.

    python bench/overhead.py [--rounds 5] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from modelatlas.backends import load_model
from modelatlas.catalog.bundled import resolve_bundled
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()

    import llama_cpp

    path = resolve_bundled(MODEL).location
    model = load_model(MODEL)
    asyncio.run(model.load())
    n_ctx = model.context_length
    threads = model.backend.engine.llm.context_params.n_threads  # the same on both sides
    direct = llama_cpp.Llama(model_path=path, n_ctx=n_ctx, n_batch=512, n_threads=threads, verbose=False)

    # Warm-up: one round each, not counted.
    direct_round(direct, args.max_tokens)
    asyncio.run(wrapped_round(model, args.max_tokens))

    rates = {"llama-cpp-python direct": [], "modelatlas Model": []}
    for _ in range(args.rounds):
        n, s = direct_round(direct, args.max_tokens)
        rates["llama-cpp-python direct"].append(n / s)
        n, s = asyncio.run(wrapped_round(model, args.max_tokens))
        rates["modelatlas Model"].append(n / s)

    print(f"model: {MODEL}  prompts: {len(PROMPTS)}  max_tokens: {args.max_tokens}  rounds: {args.rounds}")
    for name, values in rates.items():
        print(
            f"{name:26s} median {statistics.median(values):7.1f} tok/s  "
            f"(min {min(values):.1f}, max {max(values):.1f})"
        )
    medians = {name: statistics.median(values) for name, values in rates.items()}
    ratio = medians["modelatlas Model"] / medians["llama-cpp-python direct"]
    verdict = "OK" if ratio >= 0.95 else "BELOW TARGET"
    print(f"ratio (modelatlas / direct): {ratio:.3f}  target >= 0.95  {verdict}")


if __name__ == "__main__":
    main()
