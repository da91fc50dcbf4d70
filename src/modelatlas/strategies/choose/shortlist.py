"""The catalog's candidates for a use case, ranked by what is known before testing: published
benchmark scores, then price, then context; and, for each model that matches but cannot be
tested here, why (no key, no file)."""

from __future__ import annotations

from modelatlas.records import ModelRecord
from modelatlas.strategies.choose.results import Candidate, Constraints, LeftOut, Shortlist


def shortlist(constraints: Constraints) -> Shortlist:
    from modelatlas.catalog.catalog import load_catalog
    from modelatlas.catalog.query import search

    c = constraints
    catalog = load_catalog()
    if c.models:
        from modelatlas.catalog.resolve import resolve

        # The catalog's record says whether it runs here (a bundled model assembles on first use);
        # an id the catalog lacks (a file path, a model added since) resolved to its record runs.
        matched = [catalog.by_id.get(m) or resolve(m).model_copy(update={"runnable": True}) for m in c.models]
    else:
        matched = search(
            task=c.task, modality=c.modality, open_weights=c.open_weights, max_price=c.max_price,
            min_context=c.min_context, fits=c.fits, runnable=c.runnable, limit=None,
        )  # fmt: skip
    testable, left_out = [], []
    for record in matched:
        why = untestable(record)
        if why:
            left_out.append(LeftOut(model=record.id, why=why))
        else:
            testable.append(record)
    testable.sort(key=_rank)
    chosen = testable[: c.candidates]
    for record in testable[c.candidates :]:
        left_out.append(LeftOut(model=record.id, why=f"ranked below the first {c.candidates} (--candidates)"))
    return Shortlist(
        searched=len(catalog.records),
        matched=len(matched),
        candidates=[Candidate(model=r.id, hosted=_hosted(r), why=_reasons(r, c)) for r in chosen],
        left_out=left_out,
    )


def untestable(record: ModelRecord) -> str | None:
    """Why ``record`` cannot be tested on this machine now, or None."""
    from modelatlas.backends.declared import facts

    if record.backend is None:
        return "no way to run it is known (no backend in its record)"
    found = facts(record)
    missing = found.missing_env()
    if found.hosted and missing:
        return f"no key for {record.provider}: export {missing[0]}=..."
    if not found.hosted and not record.runnable:
        return "not on this machine (its weights are not here)"
    return None


def _hosted(record: ModelRecord) -> bool:
    from modelatlas.backends.declared import facts

    return facts(record).hosted


def _benchmark(record: ModelRecord) -> float | None:
    scores = [b.score for b in record.benchmarks]
    return sum(scores) / len(scores) if scores else None


def _rank(record: ModelRecord) -> tuple:
    bench = _benchmark(record)
    price = record.price.input + record.price.output if record.price else 0.0
    return (bench is None, -(bench or 0.0), price, -(record.context_length or 0), record.id)


def _reasons(record: ModelRecord, c: Constraints) -> list[str]:
    why = []
    if c.models:
        why.append("named with --model")
    elif c.task:
        why.append(f"does {c.task}")
    bench = _benchmark(record)
    if bench is not None:
        names = ", ".join(sorted({b.name for b in record.benchmarks})[:3])
        why.append(f"published benchmarks: {names} (mean {bench:.1f})")
    else:
        why.append("no published benchmarks")
    if record.price and (record.price.input or record.price.output):
        why.append(f"${record.price.input:g}/${record.price.output:g} per 1M tokens in/out")
    elif not _hosted(record):
        why.append("runs here, free per token")
    if record.context_length:
        why.append(f"context {record.context_length:,}")
    return why
