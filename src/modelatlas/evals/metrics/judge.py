"""LLM-as-judge metrics: a 1-5 rubric score, a pass/fail verdict, and a pairwise preference.

Any catalog model can judge (``ctx.judge``). Each prompt asks the judge to end with a fixed
line ("Score: N", "Verdict: PASS|FAIL", "Winner: A|B|TIE"), read back with a tolerant regex
(case-insensitive, the last match wins). An answer without that line is asked again once, with
a reminder; a second miss is recorded as ``Score(error="unparseable judge answer: ...")``, so it
is counted, never a NaN and never dropped. Judges run at temperature 0.

Each judge metric takes the option ``judge_max_tokens`` (how long the judge may answer; 256).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field

from modelatlas.errors import ConfigError, ModelAtlasError
from modelatlas.evals.metrics.base import Context, Metric, PairwiseMetric
from modelatlas.evals.metrics.image import image_pair, image_question
from modelatlas.evals.metrics.options import MetricOptions
from modelatlas.evals.types import Item, Output, Score
from modelatlas.parts import Part, TextPart
from modelatlas.types import Message

if TYPE_CHECKING:
    from modelatlas.backends.model import Model

JUDGE_MAX_TOKENS = 256

SCORE_PROMPT = """You are grading an answer to a question.

Question:
{question}

{reference}Answer to grade:
{answer}

Rate the answer from 1 to 5: 1 means wrong or useless, 3 means partly right, 5 means correct,
complete and clear. Explain briefly, then end with a final line of the form "Score: N",
where N is 1, 2, 3, 4 or 5."""

PASS_PROMPT = """You are checking an answer to a question.

Question:
{question}

{reference}Answer to check:
{answer}

Decide whether the answer is acceptable: correct, and it does what was asked. Explain briefly,
then end with a final line that is either "Verdict: PASS" or "Verdict: FAIL"."""

PAIRWISE_PROMPT = """You are comparing two answers to the same question.

Question:
{question}

{reference}Answer A:
{answer_a}

Answer B:
{answer_b}

Decide which answer is better: more correct, more complete, clearer. Do not let the order of
the answers or their length sway you. Explain briefly, then end with a final line that is
"Winner: A", "Winner: B" or "Winner: TIE"."""

REFERENCE_BLOCK = "Reference answer (correct, for comparison):\n{reference}\n\n"

SCORE_REMINDER = 'Remember: end your answer with a final line "Score: N", where N is 1 to 5.'
PASS_REMINDER = 'Remember: end your answer with a final line "Verdict: PASS" or "Verdict: FAIL".'
PAIRWISE_REMINDER = 'Remember: end your answer with a final line "Winner: A", "Winner: B" or "Winner: TIE".'

SCORE_LINE = re.compile(
    r"score\s*(?:is\b|of\b)?\s*[:=-]?\s*([1-5])(?:\.0+)?(?!\.?\d)(?:\s*/\s*5)?", re.IGNORECASE
)
VERDICT_LINE = re.compile(r"verdict\s*(?:is\b)?\s*[:=-]?\s*(pass|fail)\b", re.IGNORECASE)
WINNER_LINE = re.compile(
    r"winner\s*(?:is\b)?\s*[:=-]?\s*(?:answer\s+)?\(?((?:a\s+)?tie|a|b)\b", re.IGNORECASE
)

Parser = Callable[[str], Any]


class JudgeOptions(MetricOptions):
    judge_max_tokens: int = Field(JUDGE_MAX_TOKENS, ge=1)  # room for a short reason and the verdict


def last_match(pattern: re.Pattern[str], text: str) -> str | None:
    """The group of the pattern's last match (markdown asterisks ignored), upper-cased."""
    found = pattern.findall(text.replace("*", ""))
    return found[-1].upper() if found else None


def parse_score(text: str) -> int | None:
    value = last_match(SCORE_LINE, text)
    return None if value is None else int(value)


def parse_verdict(text: str) -> str | None:
    return last_match(VERDICT_LINE, text)


def parse_winner(text: str) -> str | None:
    winner = last_match(WINNER_LINE, text)
    return "TIE" if winner and winner.endswith("TIE") else winner  # also "the winner is a tie"


def reference_block(item: Item) -> str:
    references = [r for r in item.reference if r.strip()]
    if not references:
        return ""
    text = references[0] if len(references) == 1 else "\n".join(f"- {r}" for r in references)
    return REFERENCE_BLOCK.format(reference=text)


def judge_of(ctx: Context, metric: str) -> Model:
    if ctx.judge is None:
        raise ConfigError(
            f"{metric} needs a judge model, and none was given.",
            hint="Pass one as Context(judge=load_model(ID)); any catalog model can judge.",
        )
    return ctx.judge


async def ask(
    judge: Model, prompt: str, parse: Parser, reminder: str, max_tokens: int, shown: Sequence[Part] = ()
) -> tuple[Any, list[str]]:
    """The parsed verdict (None if the answer had none, even after one retry) and the answers.

    ``shown``: parts (a generated picture) put before the prompt in the judge's message."""
    answers: list[str] = []
    for text in (prompt, f"{prompt}\n\n{reminder}"):
        question = [Message.user([*shown, TextPart(text=text)])] if shown else judge.prompt_for(text)
        completion = await judge.generate(question, max_tokens=max_tokens, temperature=0.0)
        answers.append(completion.text)
        verdict = parse(completion.text)
        if verdict is not None:
            return verdict, answers
    return None, answers


def unparseable(answers: list[str], data: dict[str, Any]) -> Score:
    return Score(error=f"unparseable judge answer: {answers[-1][:200]}", data=data)


class _SingleJudge(Metric):
    Options = JudgeOptions
    options: JudgeOptions
    needs_reference = False  # used when present
    needs_judge = True
    prompt = ""
    reminder = ""

    def parse(self, text: str) -> Any:
        raise NotImplementedError

    def value(self, verdict: Any) -> float:
        raise NotImplementedError

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        judge = judge_of(ctx, self.name)
        template, shown = image_question(self.name, output) if output.images else (self.prompt, [])
        prompt = template.format(
            question=item.prompt_text, reference=reference_block(item), answer=output.text
        )
        max_tokens = self.for_context(ctx).options.judge_max_tokens
        try:
            verdict, answers = await ask(judge, prompt, self.parse, self.reminder, max_tokens, shown)
        except ModelAtlasError as exc:
            return Score(error=f"judge call failed: {exc.message}", data={"judge": judge.id})
        data = {"judge": judge.id, "answers": answers, "verdict": verdict}
        if verdict is None:
            return unparseable(answers, data)
        return Score(value=self.value(verdict), data=data)


class JudgeScore(_SingleJudge):
    """The judge's 1-5 rubric score."""

    name = "judge_score"
    bounds = (1.0, 5.0)
    prompt = SCORE_PROMPT
    reminder = SCORE_REMINDER

    def parse(self, text: str) -> int | None:
        return parse_score(text)

    def value(self, verdict: int) -> float:
        return float(verdict)


class JudgePass(_SingleJudge):
    """1.0 when the judge says PASS, 0.0 when it says FAIL."""

    name = "judge_pass"
    binary = True
    prompt = PASS_PROMPT
    reminder = PASS_REMINDER

    def parse(self, text: str) -> str | None:
        return parse_verdict(text)

    def value(self, verdict: str) -> float:
        return 1.0 if verdict == "PASS" else 0.0


SWAPPED = {"A": "B", "B": "A", "TIE": "TIE"}


class JudgePairwise(PairwiseMetric):
    """Which of two outputs is better: 1.0 for A, 0.0 for B, 0.5 for a tie or a disagreement.

    The judge is asked twice, A first and then B first; only a preference that survives the swap
    counts, which cancels the judge's position bias.
    """

    name = "judge_pairwise"
    bounds = (0.0, 1.0)
    Options = JudgeOptions
    options: JudgeOptions
    aggregation = "mean"  # the share of items where A wins, a tie counting half
    needs_reference = False
    needs_judge = True
    pairwise = True

    async def compare(self, item: Item, output_a: Output, output_b: Output, ctx: Context) -> Score:
        judge = judge_of(ctx, self.name)
        max_tokens = self.for_context(ctx).options.judge_max_tokens
        reference = reference_block(item)
        pictures = bool(output_a.images or output_b.images)  # an image run: the judge sees both
        template, shows = image_pair(output_a, output_b) if pictures else (PAIRWISE_PROMPT, [[], []])
        prompts = [
            template.format(
                question=item.prompt_text, reference=reference, answer_a=first.text, answer_b=second.text
            )
            for first, second in ((output_a, output_b), (output_b, output_a))
        ]
        try:
            results = await asyncio.gather(
                *(
                    ask(judge, p, parse_winner, PAIRWISE_REMINDER, max_tokens, s)
                    for p, s in zip(prompts, shows, strict=True)
                )
            )
        except ModelAtlasError as exc:
            return Score(error=f"judge call failed: {exc.message}", data={"judge": judge.id})
        (first, answers_1), (second, answers_2) = results
        data = {"judge": judge.id, "answers": [answers_1, answers_2], "verdicts": [first, second]}
        for verdict, answers in ((first, answers_1), (second, answers_2)):
            if verdict is None:
                return unparseable(answers, data)
        preferred = [first, SWAPPED[second]]  # the second order's verdict, in the original names
        data["preferred"] = preferred
        if preferred[0] == preferred[1] != "TIE":
            return Score(value=1.0 if preferred[0] == "A" else 0.0, data=data)
        return Score(value=0.5, data=data)
