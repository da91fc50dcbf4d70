"""LoRA fine-tuning wall time on CPU, against a named baseline measured in the same run.

Data: 200 examples made from examples/edtech-support/train.jsonl (its 12 questions with varied
openings and closings), one epoch, batch 1, SmolLM2-135M-Instruct (the bundled GGUF,
dequantized by transformers), LoRA r=8, torch on 2 threads. Ours: the whole `finetune()` call
(data checks, LoRA, training, per-step store writes, saving and registering the adapter).
Baseline: one inference-only forward pass of the base model over the same 200 examples, one
at a time: the floor that any training step (forward + backward + update) sits above. It is
measured before and after the fine-tune and the faster run is used, since other work on a
shared machine slows whichever side it overlaps.

    python bench/finetune.py [--examples 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "examples" / "edtech-support" / "train.jsonl"
BASE = "local/smollm2-135m-instruct"
OPENINGS = [
    "",
    "Hi! ",
    "Hello, ",
    "Quick question: ",
    "Sorry to bother you. ",
    "Hey there, ",
    "Good morning! ",
]
CLOSINGS = ["", " Thanks!", " Thank you so much.", " Cheers."]


def build(n: int, path: Path) -> None:
    """``n`` distinct prompt/completion rows from the support examples."""
    rows = [json.loads(line) for line in SOURCE.read_text().splitlines() if line.strip()]
    out = []
    for i in range(n):
        row = rows[i % len(rows)]
        k = i // len(rows)
        opening, closing = OPENINGS[k % len(OPENINGS)], CLOSINGS[(k // len(OPENINGS)) % len(CLOSINGS)]
        out.append({"prompt": f"{opening}{row['input']}{closing}", "completion": row["reference"]})
    path.write_text("".join(json.dumps(r) + "\n" for r in out))


def forward_only(ready) -> float:
    """Seconds for one forward pass (no gradients) over every training example, batch 1."""
    import torch

    from modelatlas.strategies.finetune import loop

    encoded = [loop.encode(ready.loaded.tokenizer, e) for e in ready.train.examples]
    model = ready.loaded.model
    start = time.perf_counter()
    with torch.inference_mode():
        for item in encoded:
            model(input_ids=torch.tensor([item.ids]))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["MODELATLAS_HOME"] = tempfile.mkdtemp(prefix="modelatlas-bench-")
    import torch

    torch.set_num_threads(args.threads)
    from modelatlas.strategies.finetune import estimate_seconds, finetune, prepare

    data = Path(os.environ["MODELATLAS_HOME"]) / "train.jsonl"
    build(args.examples, data)
    start = time.perf_counter()
    ready = prepare(BASE, data)
    load = time.perf_counter() - start
    n, tokens = ready.train.n, ready.train.total_tokens
    print(f"base model load + data checks: {load:.1f} s ({n} examples, {tokens:,} tokens)")
    before = forward_only(ready)
    start = time.perf_counter()
    result = finetune(BASE, data, epochs=1, batch_size=1, prepared=ready)
    total = time.perf_counter() - start
    steps = len(result.steps)
    after = forward_only(ready)
    baseline = min(before, after)
    print(f"baseline (one forward pass over the {n} examples, inference only): {baseline:.1f} s")
    print(f"  (measured {before:.1f} s before the fine-tune and {after:.1f} s after it)")
    predicted = estimate_seconds(n, 1, tokens)
    print(f"fine-tune, 1 epoch: {total:.1f} s total; {steps / total:.2f} steps/s; {n / total:.2f} examples/s")
    print(f"  loss {result.steps[0].loss:.3f} at step 1 -> final {result.train_loss:.3f}")
    print(f"  estimate_seconds() predicted {predicted:.0f} s; measured / predicted = {total / predicted:.2f}")
    print(f"ratio: fine-tune / forward-only baseline = {total / baseline:.2f}x")
    print(f"threads: {torch.get_num_threads()}, cpus on this machine: {os.cpu_count()}")
    print(
        f"load average (1, 5, 15 min) at the end: {os.getloadavg()}; other work on the cpus slows both sides"
    )


if __name__ == "__main__":
    main()
