"""Retrieval speed and quality against named baselines measured in the same run.

1. Vector search: our LanceDB store (``modelatlas.rag.store_lance``) over N random unit vectors
   (numpy, seeded) against faiss ``IndexFlatIP`` (exact inner product). Targets: p50 query
   latency at most 2x faiss's; recall@10 against the exact neighbours at least 0.95.
2. Embedding throughput: all-MiniLM-L6-v2 through our Model wrapper in batches of 64 (as an
   index run embeds) against sentence-transformers' own ``encode`` on the same texts, both on
   ``--threads`` CPU threads.

    python bench/retrieval.py [--n 100000] [--dims 384] [--queries 100] [--chunks 512] [--threads 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from modelatlas.rag.types import DocChunk, Position

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HANDBOOK = Path(__file__).resolve().parents[1] / "examples" / "edtech-support" / "docs" / "handbook.md"


def unit_rows(rng: np.random.Generator, n: int, dims: int) -> np.ndarray:
    rows = rng.standard_normal((n, dims)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def p50_ms(fn, queries: np.ndarray) -> tuple[float, list]:
    fn(queries[0])  # warm up
    samples, results = [], []
    for q in queries:
        start = time.perf_counter()
        results.append(fn(q))
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000, results


def build_store(folder: Path, data: np.ndarray):
    from modelatlas.rag.store_lance import LanceStore

    store = LanceStore(folder, "chunks-1")
    store.create(data.shape[1])
    batch = 10_000
    for start in range(0, len(data), batch):
        part = range(start, min(start + batch, len(data)))
        chunks = [DocChunk(str(i), "bench", "h", f"row {i}", Position(i, 0, 0)) for i in part]
        store.add(chunks, data[part.start : part.stop])
    store.optimize()
    return store


def vector_search(args) -> None:
    import faiss

    rng = np.random.default_rng(args.seed)
    data = unit_rows(rng, args.n, args.dims)
    queries = unit_rows(rng, args.queries, args.dims)
    exact = faiss.IndexFlatIP(args.dims)
    exact.add(data)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        store = build_store(Path(tmp), data)
        built = time.perf_counter() - start
        base, truth = p50_ms(lambda q: exact.search(q[None, :], 10)[1][0], queries)
        ours, found = p50_ms(lambda q: store.search(q, 10), queries)
        recall = np.mean(
            [len({int(c.chunk_id) for c, _ in f} & set(t.tolist())) / 10 for f, t in zip(found, truth)]
        )
    print(f"vector search: {args.n:,} unit vectors x {args.dims} dims, {args.queries} queries, k=10")
    print(f"  LanceDB store built (insert + indexes) in {built:.1f}s")
    print(f"  baseline faiss IndexFlatIP (exact, {faiss.omp_get_max_threads()} threads): p50 {base:.2f} ms")
    print(f"  ours, LanceDB store search: p50 {ours:.2f} ms  ratio {ours / base:.2f}x (target <= 2x)")
    print(f"  recall@10 against exact: {recall:.3f} (target >= 0.95)")


def sample_texts(count: int, words_each: int, seed: int) -> list[str]:
    words = HANDBOOK.read_text().split()
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, words_each)) for _ in range(count)]


def embedding(args) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    from modelatlas.catalog.bundled import resolve_bundled
    from modelatlas.loading import load_model

    record = resolve_bundled("local/all-minilm-l6-v2")
    record = record.model_copy(update={"options": {"task": "embedding", "threads": args.threads}})
    model = load_model(record)
    texts = sample_texts(args.chunks, 150, args.seed)
    tokens = statistics.mean(model.count_tokens(t) for t in texts[:64])

    async def ours() -> None:
        for start in range(0, len(texts), 64):
            await model.embed(texts[start : start + 64])

    asyncio.run(model.embed(texts[:8]))  # load and warm up
    start = time.perf_counter()
    asyncio.run(ours())
    mine = len(texts) / (time.perf_counter() - start)

    torch.set_num_threads(args.threads)
    raw = SentenceTransformer(record.location, device="cpu")
    raw.encode(texts[:8])
    start = time.perf_counter()
    raw.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    base = len(texts) / (time.perf_counter() - start)
    print(
        f"embedding: {len(texts)} chunks of ~{tokens:.0f} tokens, all-MiniLM-L6-v2 on {args.threads} threads"
    )
    print(f"  baseline sentence-transformers encode (batch 64): {base:.1f} chunks/s")
    print(f"  ours, Model.embed in batches of 64: {mine:.1f} chunks/s  ratio {mine / base:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--chunks", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    vector_search(args)
    embedding(args)


if __name__ == "__main__":
    main()
