"""A strategy from its spec, as a user writes it on the command line or in a stored run."""

from __future__ import annotations

import re

from modelatlas.errors import ConfigError, suggest
from modelatlas.evals.prompting.base import Strategy
from modelatlas.evals.prompting.retrieval import DEFAULT_K, Rag
from modelatlas.evals.prompting.shots import FewShot, ZeroShot

KINDS = ("zero-shot", "one-shot", "few-shot", "rag")
USAGE = "Use zero-shot, one-shot, few-shot:K, few-shot:K:similar or rag:KB[:K] (e.g. few-shot:3)."


def parse_strategy(text: str) -> Strategy:
    """``zero-shot``, ``one-shot``, ``few-shot[:K][:similar]`` or ``rag:KB[:K]``."""
    if text == "zero-shot":
        return ZeroShot()
    if text == "one-shot":
        return FewShot(text, shots=1)
    match = re.fullmatch(r"few-shot(?::(\d+))?(?::(random|similar))?", text)
    if match:
        return FewShot(shots=int(match.group(1) or 3), select=match.group(2) or "random")
    match = re.fullmatch(r"rag:([A-Za-z0-9._-]+)(?::(\d+))?", text)
    if match:
        return Rag(match.group(1), k=int(match.group(2) or DEFAULT_K), name=text)
    raise ConfigError(f"Unknown strategy {text!r}.", hint=_did_you_mean(text) + USAGE)


def _did_you_mean(text: str) -> str:
    """The spec with its kind spelt right ("few-shots:2" -> "few-shot:2"), when one is close."""
    kind, colon, rest = text.partition(":")
    if kind in KINDS:  # the kind is right, its arguments are not: the usage says what they can be
        return ""
    found = suggest(kind.lower(), KINDS)
    return f"Did you mean {found[0] + colon + rest!r}? " if found else ""
