"""Filtered catalog search in a warm process, against a named baseline measured in the same run.

Target: a filtered search over the whole catalog answers in under 100 ms. Baseline: one plain
Python pass over the same records that only reads one attribute (the floor any search pays).

    python bench/catalog_search.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

from modelatlas.catalog.catalog import load_catalog
from modelatlas.catalog.search import Filters, search

QUERIES = [
    ("filters only", Filters(task="chat", open_weights=True, max_price=1.0, min_context=32_000), "price"),
    ("fuzzy query", Filters(query="llama 70b"), "relevance"),
    ("misspelt query + filters", Filters(query="gpt4 mni", hosting="hosted", task="chat"), "relevance"),
    ("collection", Filters(collection="Open weights", task="code"), "release"),
]


def timed(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    start = time.perf_counter()
    catalog = load_catalog()
    print(
        f"catalog: {len(catalog)} models, {len(catalog.providers())} providers; "
        f"cold load {time.perf_counter() - start:.2f}s"
    )
    search(catalog, Filters(query="warm up"))
    floor = timed(lambda: [r.context_length for r in catalog.records], args.repeat)
    print(f"baseline (one pass reading one attribute): {floor:.2f} ms")
    worst = 0.0
    for name, filters, sort in QUERIES:
        ms = timed(lambda f=filters, s=sort: search(catalog, f, sort=s), args.repeat)
        worst = max(worst, ms)
        hits = len(search(catalog, filters, sort=sort, limit=None))
        print(f"{name:28s} {ms:7.2f} ms  ({ms / floor:5.1f}x baseline, {hits} hits)")
    print(f"slowest: {worst:.2f} ms  target < 100 ms  {'OK' if worst < 100 else 'ABOVE TARGET'}")


if __name__ == "__main__":
    main()
