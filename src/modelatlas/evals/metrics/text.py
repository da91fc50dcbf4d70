"""Text metrics: exact match, token F1, contains, regex, BLEU, chrF and ROUGE-L.

BLEU and chrF keep each item's hypothesis and references in ``Score.data`` so that the
aggregate is the corpus score (sacrebleu's ``corpus_bleu`` / ``corpus_chrf``), not a mean of
sentence scores.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import field_validator

from modelatlas.errors import ConfigError
from modelatlas.evals.metrics.base import Context, Metric
from modelatlas.evals.metrics.options import MetricOptions
from modelatlas.evals.types import Item, Output, Score
from modelatlas.registry import require as require_extra

ARTICLES = {"a", "an", "the"}
NO_REFERENCE = "the item has no reference"


def normalize(text: str) -> str:
    """Lowercase, collapse whitespace, and strip surrounding whitespace and punctuation."""
    return " ".join(text.lower().split()).strip(string.punctuation + " ")


def tokens(text: str) -> list[str]:
    """SQuAD-style tokens: normalised words, each stripped of punctuation, without articles."""
    words = (w.strip(string.punctuation) for w in normalize(text).split())
    return [w for w in words if w and w not in ARTICLES]


def require(module: str, package: str | None = None) -> Any:
    """Import a dependency of the ``eval`` extra (modelatlas.registry.require)."""
    return require_extra(module, "eval", package)


def clamp(value: float) -> float:
    """Keep a rounding error (sacrebleu gives 100.00000000000004) inside 0..1."""
    return min(1.0, max(0.0, value))


class ExactMatch(Metric):
    name = "exact_match"
    binary = True

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        if not item.reference:
            return Score(error=NO_REFERENCE)
        answer = normalize(output.text)
        return Score(value=float(any(answer == normalize(r) for r in item.reference)))


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD's token F1: the harmonic mean of token precision and recall."""
    pred, gold = tokens(prediction), tokens(reference)
    if not pred or not gold:
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


class TokenF1(Metric):
    name = "f1"
    bounds = (0.0, 1.0)

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        if not item.reference:
            return Score(error=NO_REFERENCE)
        return Score(value=max(token_f1(output.text, r) for r in item.reference))


class Contains(Metric):
    name = "contains"
    binary = True

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        references = [r for r in item.reference if r.strip()]
        if not references:
            return Score(error=NO_REFERENCE)
        text = " ".join(output.text.casefold().split())
        found = any(" ".join(r.casefold().split()) in text for r in references)
        return Score(value=float(found))


class RegexOptions(MetricOptions):
    pattern: str | None = None  # None: each item's metadata["pattern"]

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"is not a valid regular expression: {pattern!r} ({exc})") from None
        return pattern


class Regex(Metric):
    """1.0 when the pattern (option ``pattern``, else the item's ``metadata["pattern"]``) matches."""

    name = "regex"
    Options = RegexOptions
    options: RegexOptions
    needs_reference = False
    binary = True

    def check(self, items: Sequence[Item] | None = None) -> None:
        """Fail before a run: no pattern for some item, or an item's pattern that is not valid."""
        if self.options.pattern is not None:
            return  # checked when the option was given
        missing = [i.id for i in items or () if not i.metadata.get("pattern")]
        if items is None or missing:
            where = f" (items without one: {', '.join(missing[:5])})" if missing else ""
            raise ConfigError(
                f"The regex metric needs a pattern{where}.",
                hint="Set the metric option pattern=REGEX, or give every item a metadata "
                "field 'pattern' (and pass the items to validate).",
            )
        for item in items:
            _compile(item.metadata["pattern"], f"item {item.id}'s pattern")

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        pattern = self.for_context(ctx).options.pattern or item.metadata.get("pattern")
        if not pattern:
            return Score(error="no regex pattern: set the option 'pattern' or metadata 'pattern'")
        try:
            found = re.search(pattern, output.text)
        except re.error as exc:
            return Score(error=f"bad regex pattern {pattern!r}: {exc}")
        return Score(value=float(found is not None), data={"pattern": pattern})


def _compile(pattern: str, where: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            f"{where} is not a valid regular expression: {pattern!r} ({exc}).",
            hint="Use Python `re` syntax.",
        ) from exc


def reference_streams(scores: Sequence[Score]) -> tuple[list[str], list[list[str]]]:
    """Hypotheses and sacrebleu's reference streams, padding short lists by repeating them."""
    kept = [s.data for s in scores if s.ok]
    hypotheses = [d["hypothesis"] for d in kept]
    width = max((len(d["references"]) for d in kept), default=0)
    streams = [[d["references"][j % len(d["references"])] for d in kept] for j in range(width)]
    return hypotheses, streams


class _Sacrebleu(Metric):
    """A sacrebleu sentence score per item and the corpus score as the aggregate, both 0..1."""

    bounds = (0.0, 1.0)
    sentence = ""  # the sacrebleu function names, e.g. "sentence_bleu" and "corpus_bleu"
    corpus = ""

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        if not item.reference:
            return Score(error=NO_REFERENCE)
        sacrebleu = require("sacrebleu")
        value = getattr(sacrebleu, self.sentence)(output.text, list(item.reference)).score / 100
        data = {"hypothesis": output.text, "references": list(item.reference)}
        return Score(value=clamp(value), data=data)

    def aggregate(self, scores: Sequence[Score]) -> float | None:
        hypotheses, streams = reference_streams(scores)
        if not hypotheses:
            return None
        return clamp(getattr(require("sacrebleu"), self.corpus)(hypotheses, streams).score / 100)


class Bleu(_Sacrebleu):
    """Sentence BLEU per item, corpus BLEU as the aggregate; both 0..1 (sacrebleu / 100)."""

    name = "bleu"
    sentence, corpus = "sentence_bleu", "corpus_bleu"
    aggregation = "corpus_bleu"


class Chrf(_Sacrebleu):
    """Sentence chrF per item, corpus chrF as the aggregate; both 0..1 (sacrebleu / 100)."""

    name = "chrf"
    sentence, corpus = "sentence_chrf", "corpus_chrf"
    aggregation = "corpus_chrf"


class RougeL(Metric):
    """ROUGE-L F-measure (with stemming), the best over the references; the mean aggregates."""

    name = "rouge_l"
    bounds = (0.0, 1.0)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._scorer: Any = None

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        if not item.reference:
            return Score(error=NO_REFERENCE)
        if self._scorer is None:
            rouge_scorer = require("rouge_score.rouge_scorer", "rouge-score")
            self._scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
        values = [self._scorer.score(r, output.text)["rougeL"].fmeasure for r in item.reference]
        return Score(value=max(values))
