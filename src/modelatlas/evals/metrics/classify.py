"""Classification metrics: accuracy and macro F1 over normalised labels.

The prediction is the whole output, normalised like exact match (lowercase, collapsed
whitespace, no surrounding punctuation), so "Positive." is the label "positive". An item may
list several acceptable labels; the gold label is the one the prediction matched, else the first.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelatlas.evals.metrics.base import Context, Metric
from modelatlas.evals.metrics.text import NO_REFERENCE, normalize
from modelatlas.evals.types import Item, Output, Score


def label_score(item: Item, output: Output) -> Score:
    """1.0 when the predicted label is a reference label; data keeps both labels."""
    if not item.reference:
        return Score(error=NO_REFERENCE)
    pred = normalize(output.text)
    golds = [normalize(r) for r in item.reference]
    gold = pred if pred in golds else golds[0]
    return Score(value=float(pred == gold), data={"pred": pred, "gold": gold})


def macro_f1(pairs: Sequence[tuple[str, str]]) -> float | None:
    """The unweighted mean of per-label F1 over every label seen in gold or predictions.

    Per label, F1 = 2·TP / (2·TP + FP + FN), which is 0 when the label was never right
    (as scikit-learn's ``f1_score(average="macro")`` with ``zero_division=0``).
    """
    if not pairs:
        return None
    labels = {label for pair in pairs for label in pair}
    total = 0.0
    for label in labels:
        tp = sum(1 for pred, gold in pairs if pred == label and gold == label)
        fp = sum(1 for pred, gold in pairs if pred == label and gold != label)
        fn = sum(1 for pred, gold in pairs if pred != label and gold == label)
        total += 2 * tp / (2 * tp + fp + fn)
    return total / len(labels)


class Accuracy(Metric):
    name = "accuracy"
    binary = True

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        return label_score(item, output)


class MacroF1(Metric):
    """Per item: correctness (0 or 1). Aggregate: macro F1 over the labels of the run."""

    name = "macro_f1"
    bounds = (0.0, 1.0)
    aggregation = "macro_f1"

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        return label_score(item, output)

    def aggregate(self, scores: Sequence[Score]) -> float | None:
        return macro_f1([(s.data["pred"], s.data["gold"]) for s in scores if s.ok])
