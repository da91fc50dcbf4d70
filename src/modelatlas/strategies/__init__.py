"""Strategies: prompting (zero-, one-, few-shot) turns dataset items into what a model is sent."""

from modelatlas.strategies.prompting import Strategy, examples_for, parse_strategy, render

__all__ = ["Strategy", "examples_for", "parse_strategy", "render"]
