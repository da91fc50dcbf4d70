"""Prompt strategies (zero-shot, few-shot, RAG), re-exported from :mod:`modelatlas.evals.prompting`.

They live in ``evals`` because the runner and the dry run use them; ``strategies`` builds on
evaluations (improve, fine-tuning), so it imports ``evals`` and never the other way round.
"""

from modelatlas.evals.prompting import (
    COMPLETION_STOP,
    FewShot,
    Prepared,
    PromptSetup,
    PromptStrategy,
    Rag,
    Strategy,
    ZeroShot,
    available_examples,
    check_pool,
    examples_for,
    load_template,
    parse_strategy,
    prompt_tokens,
    question_text,
    rank_by_similarity,
    render,
    stops_for,
    usable,
)

__all__ = [
    "COMPLETION_STOP",
    "FewShot",
    "Prepared",
    "PromptSetup",
    "PromptStrategy",
    "Rag",
    "Strategy",
    "ZeroShot",
    "available_examples",
    "check_pool",
    "examples_for",
    "load_template",
    "parse_strategy",
    "prompt_tokens",
    "question_text",
    "rank_by_similarity",
    "render",
    "stops_for",
    "usable",
]
