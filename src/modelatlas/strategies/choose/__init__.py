"""`choose`: from a use case's constraints and dataset to a decision (shortlist, quality,
load, Pareto front, recommendation)."""

from modelatlas.strategies.choose.decide import choose
from modelatlas.strategies.choose.pareto import dominates, mark_front, pick
from modelatlas.strategies.choose.results import Candidate, Constraints, Decision, LeftOut, Point, Shortlist
from modelatlas.strategies.choose.shortlist import shortlist

__all__ = [
    "Candidate",
    "Constraints",
    "Decision",
    "LeftOut",
    "Point",
    "Shortlist",
    "choose",
    "dominates",
    "mark_front",
    "pick",
    "shortlist",
]
