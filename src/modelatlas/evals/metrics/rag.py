"""RAG metrics: is the reference in what was retrieved, and is the answer supported by it.

``context_recall`` is computed, not judged: the share of the reference's content words that the
retrieved chunks contain (the best reference counts). ``faithfulness`` asks the judge whether
every claim of the answer is supported by the retrieved chunks; like the judge metrics it takes
the option ``judge_max_tokens``.
"""

from __future__ import annotations

import re

from modelatlas.errors import ModelAtlasError
from modelatlas.evals.metrics.base import Context, Metric
from modelatlas.evals.metrics.judge import JudgeOptions, ask, judge_of, parse_verdict, unparseable
from modelatlas.evals.types import Item, Output, Score

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "with",
        "by",
        "from",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "its",
        "this",
        "that",
        "as",
        "your",
        "you",
        "i",
        "we",
        "they",
        "he",
        "she",
        "do",
        "does",
        "did",
        "can",
        "will",
        "would",
        "should",
        "could",
        "not",
        "no",
        "yes",
        "if",
        "then",
        "than",
        "so",
    ]
)

FAITHFUL_PROMPT = """You are checking whether an answer is supported by the given sources.

Sources:
{sources}

Answer:
{answer}

Is every claim in the answer supported by the sources? Think briefly, then end with a final line
"Verdict: PASS" if it is fully supported, or "Verdict: FAIL" if anything is not."""
FAITHFUL_REMINDER = 'Remember: end with a final line "Verdict: PASS" or "Verdict: FAIL".'


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9$%.]+", text.lower()) if w.strip(".") and w not in STOPWORDS}


NO_CONTEXTS = "the strategy retrieved nothing: use a rag:KB strategy"


class ContextRecall(Metric):
    """Share of the reference's content words found in the retrieved chunks (0 to 1)."""

    name = "context_recall"
    bounds = (0.0, 1.0)

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        if output.contexts is None:
            return Score(error=NO_CONTEXTS)
        found = content_words(" ".join(output.contexts))
        best = 0.0
        for reference in item.reference:
            words = content_words(reference)
            if words:
                best = max(best, len(words & found) / len(words))
        return Score(value=best)


class Faithfulness(Metric):
    """1.0 when the judge finds the answer supported by the retrieved chunks, else 0.0."""

    name = "faithfulness"
    Options = JudgeOptions
    options: JudgeOptions
    needs_reference = False
    needs_judge = True
    binary = True

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        if output.contexts is None:
            return Score(error=NO_CONTEXTS)
        judge = judge_of(ctx, self.name)
        sources = "\n\n".join(f"[{n}] {text}" for n, text in enumerate(output.contexts, start=1)) or "(none)"
        prompt = FAITHFUL_PROMPT.format(sources=sources, answer=output.text)
        max_tokens = self.for_context(ctx).options.judge_max_tokens
        try:
            verdict, answers = await ask(judge, prompt, parse_verdict, FAITHFUL_REMINDER, max_tokens)
        except ModelAtlasError as exc:
            return Score(error=f"judge call failed: {exc.message}")
        data = {"judge": judge.id, "answers": answers, "verdict": verdict}
        if verdict is None:
            return unparseable(answers, data)
        return Score(value=1.0 if verdict == "PASS" else 0.0, data=data)
