"""Strategies: ways to make a model better at a use case, each measured by an evaluation.

Prompting (zero-, one-, few-shot, RAG) turns dataset items into what a model is sent; it is
defined in :mod:`modelatlas.evals.prompting` (the runner needs it) and re-exported here.
Fine-tuning makes a new catalog model; ``improve`` compares them all in one run.
"""

from modelatlas.strategies.prompting import (
    FewShot,
    Prepared,
    PromptSetup,
    Rag,
    Strategy,
    ZeroShot,
    examples_for,
    parse_strategy,
    render,
)
from modelatlas.strategies.results import ApproachRow, ImproveReport, TunedModel, Versus

__all__ = [
    "ApproachRow",
    "FewShot",
    "ImproveReport",
    "Prepared",
    "PromptSetup",
    "Rag",
    "Strategy",
    "TunedModel",
    "Versus",
    "ZeroShot",
    "examples_for",
    "parse_strategy",
    "render",
]
