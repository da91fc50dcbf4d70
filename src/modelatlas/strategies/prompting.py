"""Prompt strategies: how a dataset item becomes what is sent to a model.

``zero-shot`` sends the question alone; ``few-shot:K`` puts K solved examples before it. Chat
models get the examples as earlier user/assistant turns; base models (mode "completion") get a
plain "Question:/Answer:" transcript and stop at the next question.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from modelatlas.errors import ConfigError
from modelatlas.evals.types import Item
from modelatlas.types import Message, Prompt

COMPLETION_STOP = ("\nQuestion:", "\n\n")


@dataclass(frozen=True)
class Strategy:
    name: str  # as the user wrote it: "zero-shot", "few-shot:3"
    shots: int = 0
    seed: int = 0


def parse_strategy(text: str) -> Strategy:
    """``zero-shot``, ``one-shot`` or ``few-shot:K``."""
    if text == "zero-shot":
        return Strategy(text)
    if text == "one-shot":
        return Strategy(text, shots=1)
    match = re.fullmatch(r"few-shot(?::(\d+))?", text)
    if match:
        return Strategy(text if match.group(1) else "few-shot:3", shots=int(match.group(1) or 3))
    raise ConfigError(
        f"Unknown strategy {text!r}.", hint="Use zero-shot, one-shot or few-shot:K (e.g. few-shot:3)."
    )


def examples_for(item: Item, strategy: Strategy, pool: list[Item]) -> list[Item]:
    """K examples with references, never the item itself, drawn with a seed fixed per item."""
    if strategy.shots == 0:
        return []
    candidates = [p for p in pool if p.id != item.id and p.reference and p.prompt_text != item.prompt_text]
    rng = random.Random(f"{strategy.seed}:{item.id}")
    return rng.sample(candidates, min(strategy.shots, len(candidates)))


def render(item: Item, examples: list[Item], mode: str, system: str | None = None) -> Prompt:
    """The prompt for ``item`` with ``examples`` before it, in the form the model's mode needs."""
    if mode == "completion":
        parts = [system.strip()] if system else []
        parts += [f"Question: {e.prompt_text}\nAnswer: {e.reference[0]}" for e in examples]
        parts.append(f"Question: {item.prompt_text}\nAnswer:")
        return "\n\n".join(parts)
    messages: list[Message] = [Message.system(system)] if system else []
    for example in examples:
        messages += [Message.user(example.prompt_text), Message.assistant(example.reference[0])]
    if item.messages:
        messages += [m for m in item.messages if not (system and m.role == "system")]
    else:
        messages.append(Message.user(item.prompt_text))
    return messages


def stops_for(mode: str) -> tuple[str, ...]:
    return COMPLETION_STOP if mode == "completion" else ()
