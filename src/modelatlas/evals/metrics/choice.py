"""Multiple-choice accuracy, by log-likelihood or by a letter the model wrote.

For a model with log-likelihoods the runner fills ``Output.choice_logprobs`` and the
prediction is the most likely choice. For a chat-only model the runner sends
``letter_prompt(item)`` and the prediction is parsed from the answer: "B", "(B)", "B) Paris",
"Answer: B", "the answer is b", or the exact text of a choice. An answer that cannot be parsed
scores 0.0 with ``data["parsed"] = None``: the model failed, not the metric.
"""

from __future__ import annotations

import re
import string

from modelatlas.evals.metrics.base import Context, Metric
from modelatlas.evals.metrics.text import normalize
from modelatlas.evals.types import Item, Output, Score

LETTERS = string.ascii_uppercase

LETTER_INSTRUCTION = "Answer with the letter of the correct choice only."

# "Answer: B", "answer is (c)", "The correct answer is B." (the last one in the text wins).
ANSWER_IS = re.compile(r"\banswer\b\s*(?:is\b)?\s*[:=-]?\s*\(?([a-z])\)?(?![a-z])", re.IGNORECASE)
# The whole answer is a letter: "B", "(B)", "b.", "B)".
ONLY_LETTER = re.compile(r"^\(?([a-z])\)?[.):]?$", re.IGNORECASE)
# The answer starts with a marked letter: "B) Paris", "(B) Paris", "B. Paris", "B: Paris".
LEADING_LETTER = re.compile(r"^(?:\(([a-z])\)|([a-z])[).:])\s", re.IGNORECASE)


def letter_prompt(item: Item) -> str:
    """The question with lettered choices, asking for the letter only."""
    lines = [f"{LETTERS[i]}. {choice}" for i, choice in enumerate(item.choices or [])]
    return f"{item.prompt_text.strip()}\n\n" + "\n".join(lines) + f"\n\n{LETTER_INSTRUCTION}"


def parse_choice(text: str, choices: list[str]) -> int | None:
    """The index of the choice an answer names, or None when it names none."""
    answer = text.replace("*", "").strip()  # also "**B**", as markdown writes it
    by_text = [normalize(c) for c in choices]
    if normalize(answer) in by_text:
        return by_text.index(normalize(answer))
    valid = LETTERS[: len(choices)]
    letter = next((c.upper() for c in _letters(answer) if c.upper() in valid), None)
    return None if letter is None else valid.index(letter)


def _letters(answer: str) -> list[str]:
    """Candidate letters, most trusted first: the last "answer is X", then a leading letter."""
    found = []
    for match in reversed(list(ANSWER_IS.finditer(answer))):
        letter = match.group(1)
        # "the answer is a cat": a lowercase letter followed by a word is an article, not a choice.
        if letter.isupper() or not re.match(r"\s+[a-z]", answer[match.end() :], re.IGNORECASE):
            found.append(letter)
    for pattern in (ONLY_LETTER, LEADING_LETTER):
        whole = pattern.match(answer)
        if whole:
            found.append(next(g for g in whole.groups() if g))
    return found


def argmax(values: list[float]) -> int:
    """The index of the largest value; the first one on a tie."""
    return max(range(len(values)), key=lambda i: (values[i], -i))


class MCAccuracy(Metric):
    name = "mc_accuracy"
    needs_reference = False
    needs_choices = True
    binary = True

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        if not item.choices:
            return Score(error="the item has no choices")
        if item.answer is None:
            return Score(error="the item has no answer (the index of the right choice)")
        logprobs = output.choice_logprobs
        pred: int | None
        if logprobs is not None:
            if len(logprobs) != len(item.choices):
                return Score(error=f"{len(logprobs)} log-probabilities for {len(item.choices)} choices")
            pred = argmax(logprobs)
            data = {"pred": pred, "gold": item.answer, "by": "logprobs"}
        else:
            pred = parse_choice(output.text, item.choices)
            parsed = None if pred is None else LETTERS[pred]
            data = {"pred": pred, "gold": item.answer, "by": "text", "parsed": parsed}
        return Score(value=float(pred == item.answer), data=data)
