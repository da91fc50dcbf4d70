"""Prompting strategies: how a dataset item becomes what is sent to a model.

The evaluation runner holds them only through the :class:`Strategy` protocol. They live in
``evals`` (not in ``strategies``) because the runner and the dry run need them, and
``strategies`` (improve, fine-tuning, choose) orchestrate evaluations, so it sits above ``evals``
and re-exports these for its users (``modelatlas.strategies.prompting``).
"""

from modelatlas.evals.prompting.base import (
    DEFAULT_EMBEDDER,
    MARGIN,
    Prepared,
    PromptSetup,
    PromptStrategy,
    Strategy,
    counted,
)
from modelatlas.evals.prompting.examples import (
    available_examples,
    check_pool,
    examples_for,
    rank_by_similarity,
    usable,
)
from modelatlas.evals.prompting.parse import parse_strategy
from modelatlas.evals.prompting.render import (
    COMPLETION_STOP,
    load_template,
    prompt_tokens,
    question_text,
    render,
    stops_for,
)
from modelatlas.evals.prompting.retrieval import Rag
from modelatlas.evals.prompting.shots import FewShot, ZeroShot

__all__ = [
    "COMPLETION_STOP",
    "DEFAULT_EMBEDDER",
    "MARGIN",
    "FewShot",
    "Prepared",
    "PromptSetup",
    "PromptStrategy",
    "Rag",
    "Strategy",
    "ZeroShot",
    "available_examples",
    "check_pool",
    "counted",
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
