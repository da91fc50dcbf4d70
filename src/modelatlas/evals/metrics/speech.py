"""Word and character error rates (jiwer), for speech recognition and other transcriptions.

Lower is better. The aggregate is the corpus rate (all edits over all reference words or
characters), not the mean of the item rates, so a long utterance weighs more than a short one.

Both texts are normalised first (option ``normalize``):

- ``whisper`` (the default): Whisper's English normaliser (:mod:`.english_normalizer`), as
  published WER figures use, so that "Mr. Smith paid $20" and "mister smith paid twenty
  dollars" are the same words;
- ``basic``: lowercase, punctuation and symbols as spaces, bracketed text dropped (any language;
  diacritics kept);
- ``none``: the texts as they are (jiwer only splits the words).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from modelatlas.evals.metrics.base import Context, Metric
from modelatlas.evals.metrics.english_normalizer import basic_normalize, normalize_english
from modelatlas.evals.metrics.options import MetricOptions
from modelatlas.evals.metrics.text import NO_REFERENCE, require
from modelatlas.evals.types import Item, Output, Score

Normalisation = Literal["whisper", "basic", "none"]
NORMALISERS: dict[str, Callable[[str], str]] = {
    "whisper": normalize_english,
    "basic": basic_normalize,
    "none": lambda text: text,
}


class ErrorRateOptions(MetricOptions):
    normalize: Normalisation = "whisper"


class _ErrorRate(Metric):
    Options = ErrorRateOptions
    options: ErrorRateOptions
    higher_is_better = False
    bounds = (0.0, None)  # insertions count: WER can pass 1
    rate = "wer"  # the jiwer function for one item
    process = "process_words"  # the jiwer function for the corpus
    aggregation = "corpus_wer"

    def normalised(self, text: str) -> str:
        return NORMALISERS[self.options.normalize](text)

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        if not item.reference or not item.reference[0].strip():
            return Score(error=NO_REFERENCE)
        jiwer = require("jiwer")
        reference, hypothesis = self.normalised(item.reference[0]), self.normalised(output.text)
        if not reference.strip():
            return Score(
                error=f"the reference {item.reference[0]!r} is empty once normalised "
                f"({self.options.normalize}): no words to count errors against"
            )
        value = getattr(jiwer, self.rate)(reference, hypothesis)
        return Score(value=float(value), data={"reference": reference, "hypothesis": hypothesis})

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
