"""Word and character error rates (jiwer), for speech recognition and other transcriptions.

Lower is better. The aggregate is the corpus rate (all edits over all reference words or
characters), not the mean of the item rates, so a long utterance weighs more than a short one.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelatlas.evals.metrics.base import Context, Metric
from modelatlas.evals.metrics.text import NO_REFERENCE, require
from modelatlas.evals.types import Item, Output, Score


class _ErrorRate(Metric):
    higher_is_better = False
    rate = "wer"  # the jiwer function for one item
    process = "process_words"  # the jiwer function for the corpus
    aggregation = "corpus_wer"

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        if not item.reference or not item.reference[0].strip():
            return Score(error=NO_REFERENCE)
        jiwer = require("jiwer")
        reference = item.reference[0]
        value = getattr(jiwer, self.rate)(reference, output.text)
        return Score(value=float(value), data={"reference": reference, "hypothesis": output.text})

    def aggregate(self, scores: Sequence[Score]) -> float | None:
        kept = [s.data for s in scores if s.ok]
        if not kept:
            return None
        jiwer = require("jiwer")
        result = getattr(jiwer, self.process)([d["reference"] for d in kept], [d["hypothesis"] for d in kept])
        return float(getattr(result, self.rate))


class WER(_ErrorRate):
    """Word error rate: (substitutions + deletions + insertions) / reference words."""

    name = "wer"


class CER(_ErrorRate):
    """Character error rate: (substitutions + deletions + insertions) / reference characters."""

    name = "cer"
    aggregation = "corpus_cer"
    rate = "cer"
    process = "process_characters"
