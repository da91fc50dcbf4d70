"""The primary metric, picked from the data when none is given, with the reason in words."""

from __future__ import annotations

from modelatlas.evals.datasets import Dataset


def primary_metric(dataset: Dataset) -> tuple[str, str]:
    """Multiple choice: accuracy. References that are a few labels repeated over the items
    (classification): exact match. Free-text references: token F1, which gives credit for an
    answer that says the reference in other words around it, where exact match scores 0."""
    if dataset.has_choices:
        return "mc_accuracy", "the items are multiple choice"
    if not dataset.has_references:
        return "judge_score", "the items have no references, so a judge model scores the answers"
    refs = [r for item in dataset.items for r in item.reference[:1]]
    distinct = len(set(refs))
    short = sum(len(r.split()) for r in refs) / max(len(refs), 1) <= 3
    # Labels repeat: on average each at least twice, and a handful of them (10, or a quarter).
    if short and distinct <= len(refs) / 2 and distinct <= max(10, len(refs) // 4):
        return "exact_match", f"the references are {distinct} short labels repeated over {len(refs)} items"
    return "f1", (
        f"the references are free text ({distinct} distinct in {len(refs)} items): token F1 credits an "
        "answer that contains the reference in other words, where exact match would score it 0"
    )
