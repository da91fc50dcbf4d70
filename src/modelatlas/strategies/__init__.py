"""Strategies: prompting (zero-, one-, few-shot) turns dataset items into what a model is sent."""

from modelatlas.strategies.prompting import Strategy, examples_for, parse_strategy, render
from modelatlas.strategies.results import ApproachRow, ImproveReport, TunedModel, Versus

__all__ = [
    "ApproachRow",
    "ImproveReport",
    "Strategy",
    "TunedModel",
    "Versus",
    "examples_for",
    "parse_strategy",
    "render",
]
