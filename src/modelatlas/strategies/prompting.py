"""Prompt strategies: how a dataset item becomes what is sent to a model.

``zero-shot`` sends the question alone; ``few-shot:K`` puts K solved examples before it, drawn
at random with a seed (``few-shot:K:similar`` picks the K most similar by embedding instead);
``rag:KB[:K]`` puts the K best chunks of a knowledge base before it. Chat models get examples as
earlier user/assistant turns; base models (mode "completion") get a plain "Question:/Answer:"
transcript and stop at the next question. A Jinja2 template can shape each question.
"""

from __future__ import annotations

import logging
import random
import re
from collections import Counter
from dataclasses import dataclass

from modelatlas.errors import ConfigError
from modelatlas.evals.types import Item
from modelatlas.types import Message, Prompt

COMPLETION_STOP = ("\nQuestion:", "\n\n")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Strategy:
    name: str  # as the user wrote it: "zero-shot", "few-shot:3", "rag:handbook:4"
    shots: int = 0
    select: str = "random"  # or "similar"
    kb: str | None = None  # knowledge base for RAG
    k: int = 0  # chunks to retrieve
    seed: int = 0


def parse_strategy(text: str) -> Strategy:
    """``zero-shot``, ``one-shot``, ``few-shot[:K][:similar]`` or ``rag:KB[:K]``."""
    if text == "zero-shot":
        return Strategy(text)
    if text == "one-shot":
        return Strategy(text, shots=1)
    match = re.fullmatch(r"few-shot(?::(\d+))?(?::(random|similar))?", text)
    if match:
        shots = int(match.group(1) or 3)
        select = match.group(2) or "random"
        name = f"few-shot:{shots}" + (":similar" if select == "similar" else "")
        return Strategy(name, shots=shots, select=select)
    match = re.fullmatch(r"rag:([A-Za-z0-9._-]+)(?::(\d+))?", text)
    if match:
        return Strategy(text, kb=match.group(1), k=int(match.group(2) or 4))
    raise ConfigError(
        f"Unknown strategy {text!r}.",
        hint="Use zero-shot, one-shot, few-shot:K, few-shot:K:similar or rag:KB[:K] (e.g. few-shot:3).",
    )


def usable(example: Item, item: Item) -> bool:
    """Whether ``example`` can be shown before ``item``: it has an answer and is not the item."""
    return example.id != item.id and bool(example.reference) and example.prompt_text != item.prompt_text


def examples_for(
    item: Item, strategy: Strategy, pool: list[Item], ranked: dict[str, list[int]] | None = None
) -> list[Item]:
    """K examples with references, never the item itself: the most similar ones when ``ranked``
    (pool indices by similarity to each item) is given, else drawn with a seed fixed per item."""
    if strategy.shots == 0:
        return []
    if strategy.select == "similar" and ranked is not None:
        return [pool[i] for i in ranked[item.id] if usable(pool[i], item)][: strategy.shots]
    candidates = [p for p in pool if usable(p, item)]
    rng = random.Random(f"{strategy.seed}:{item.id}")
    return rng.sample(candidates, min(strategy.shots, len(candidates)))


def available_examples(items: list[Item], pool: list[Item]) -> list[int]:
    """For each item, how many pool rows ``usable`` allows before it (counted, not compared
    pairwise, so 10,000 items against a 10,000-row pool stay instant)."""
    answered = [p for p in pool if p.reference]
    ids = Counter(p.id for p in answered)
    texts = Counter(p.prompt_text for p in answered)
    both = Counter((p.id, p.prompt_text) for p in answered)
    return [len(answered) - ids[i.id] - texts[i.prompt_text] + both[(i.id, i.prompt_text)] for i in items]


def check_pool(strategy: Strategy, items: list[Item], pool: list[Item], warn: bool = True) -> None:
    """Refuse a few-shot strategy that the pool leaves without a single example (it would be
    zero-shot under another name); warn when some items will get fewer examples than asked."""
    if not strategy.shots:
        return
    got = [min(strategy.shots, n) for n in available_examples(items, pool)]
    if not any(got):
        answered = sum(1 for p in pool if p.reference)
        raise ConfigError(
            f"{strategy.name} would send no examples: {answered} of the {len(pool)} pool rows have "
            "an answer, and none of them can go before the test items (an example is never the "
            "item itself).",
            hint="Give the pool rows a 'reference', or in chat format end each with the assistant's "
            "answer (--examples for eval, --train for improve).",
        )
    short = sum(1 for n in got if n < strategy.shots)
    if short and warn:
        log.warning(
            "%s: %d of %d items get fewer than %d examples: the pool has too few usable rows "
            "(counted per item as examples_short).",
            strategy.name,
            short,
            len(items),
            strategy.shots,
        )


async def rank_by_similarity(items: list[Item], pool: list[Item], embedder) -> dict[str, list[int]]:
    """For each item, the pool's indices from most to least similar (cosine of embeddings)."""
    import numpy as np

    pool_vectors = np.asarray((await embedder.embed([p.prompt_text for p in pool])).vectors)
    item_vectors = np.asarray((await embedder.embed([i.prompt_text for i in items])).vectors)
    pool_vectors /= np.linalg.norm(pool_vectors, axis=1, keepdims=True) + 1e-12
    item_vectors /= np.linalg.norm(item_vectors, axis=1, keepdims=True) + 1e-12
    order = np.argsort(-(item_vectors @ pool_vectors.T), axis=1)
    return {item.id: [int(i) for i in row] for item, row in zip(items, order, strict=True)}


def question_text(item: Item, template=None) -> str:
    """The user's question: the item's text, or a Jinja2 template filled with the item's fields."""
    if template is None:
        return item.prompt_text
    from jinja2 import UndefinedError

    try:
        return template.render(
            input=item.prompt_text, choices=item.choices, metadata=item.metadata, id=item.id, **item.metadata
        )
    except UndefinedError as exc:
        raise ConfigError(
            f"The prompt template needs a field item {item.id!r} lacks: {exc.message}.",
            hint="Add the field to every row, or guard it in the template with {% if %}.",
        ) from None


def load_template(path: str):
    """A Jinja2 template file for the question; unknown variables are errors, not blanks."""
    from jinja2 import StrictUndefined, TemplateSyntaxError
    from jinja2.sandbox import SandboxedEnvironment

    try:
        with open(path, encoding="utf-8") as handle:
            source = handle.read()
        return SandboxedEnvironment(undefined=StrictUndefined).from_string(source)
    except OSError as exc:
        raise ConfigError(f"Cannot read the template {path}: {exc.strerror}.") from None
    except TemplateSyntaxError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: template syntax error: {exc.message}.") from None


def render(item: Item, examples: list[Item], mode: str, system: str | None = None, template=None) -> Prompt:
    """The prompt for ``item`` with ``examples`` before it, in the form the model's mode needs."""
    if mode == "completion":
        parts = [system.strip()] if system else []
        parts += [f"Question: {question_text(e, template)}\nAnswer: {e.reference[0]}" for e in examples]
        parts.append(f"Question: {question_text(item, template)}\nAnswer:")
        return "\n\n".join(parts)
    messages: list[Message] = [Message.system(system)] if system else []
    for example in examples:
        messages += [Message.user(question_text(example, template)), Message.assistant(example.reference[0])]
    if item.messages and template is None:
        messages += [m for m in item.messages if not (system and m.role == "system")]
    else:
        messages.append(Message.user(question_text(item, template)))
    return messages


def prompt_tokens(prompt: Prompt, count) -> int:
    """Tokens of a prompt by ``count`` (a model's tokenizer), with a few per message for the template."""
    if isinstance(prompt, str):
        return count(prompt)
    return sum(count(m.text) + 4 for m in prompt)


def stops_for(mode: str) -> tuple[str, ...]:
    return COMPLETION_STOP if mode == "completion" else ()
