"""Fine-tuning data: OpenAI chat JSONL or prompt/completion JSONL, checked row by row.

Accepted rows: ``{"messages": [{"role", "content"}, ...]}`` with at least one assistant
message, ``{"prompt", "completion"}``, or the evaluation format ``{"input", "reference"}``
(read as prompt and completion). Every example becomes a chat; the assistant turns are what
the model learns. All bad rows are reported at once, each as ``file:line``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelatlas.errors import DatasetError

log = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant")
PAIRS = (("prompt", "completion"), ("input", "reference"))


@dataclass(frozen=True)
class Example:
    """One training example: a chat whose assistant turns are the targets."""

    messages: tuple[tuple[str, str], ...]  # (role, content)
    line: int

    @property
    def chat(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]


@dataclass
class TrainingSet:
    path: str
    examples: list[Example]
    tokens: list[int]  # per example, as the model will see it (chat template included)
    hash: str  # sha256 of the normalised examples, in order
    duplicates: list[tuple[int, int]] = field(default_factory=list)  # (line, line it repeats)
    context_length: int | None = None

    @property
    def n(self) -> int:
        return len(self.examples)

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens)

    @property
    def longest(self) -> int:
        return max(self.tokens, default=0)


def load_training(
    path: str | Path, tokenizer_count: Callable[[Example], int], context_length: int | None
) -> TrainingSet:
    """Read and check ``path``. ``tokenizer_count`` gives an example's token count as trained.

    Raises one DatasetError naming every malformed row, or every example longer than
    ``context_length``; duplicated examples are logged as a warning and kept in ``duplicates``.
    """
    source = Path(path)
    examples = _examples(source)
    tokens = [tokenizer_count(example) for example in examples]
    if context_length:
        _check_lengths(source, examples, tokens, context_length)
    duplicates = _duplicates(examples)
    if duplicates:
        lines = ", ".join(f"{source}:{line} (repeats line {first})" for line, first in duplicates)
        log.warning("%d duplicated training examples: %s", len(duplicates), lines)
    return TrainingSet(str(source), examples, tokens, data_hash(examples), duplicates, context_length)


def data_hash(examples: list[Example]) -> str:
    """sha256 over the normalised examples (their chats, not their line numbers), in order."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(json.dumps(example.chat, ensure_ascii=False, sort_keys=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()


# Measured on a 2-core x86 machine (torch 2.13 CPU build, SmolLM2-135M dequantized to float32,
# LoRA r=8 on q/k/v/o, AdamW, batch 1): a step of n tokens (forward, backward, optimizer)
# took 0.15 s + 0.0038 s per token, from 0.28 s at 40 tokens to 0.75 s at 160. A validation
# pass is a forward pass only, about a third of a step's cost per token, and runs about
# VAL_CHECKS times. The base model's load (15 to 25 s) is not included. bench/finetune.py
# prints the measured rate of the machine it runs on; more cores or a bigger model change it.
SECONDS_PER_STEP = 0.15
SECONDS_PER_TOKEN = 0.004
VAL_CHECKS = 10


def estimate_seconds(
    n_examples: int,
    epochs: int,
    tokens: int,
    *,
    batch_size: int = 1,
    max_steps: int | None = None,
    val_tokens: int = 0,
) -> float:
    """Rough wall time of a fine-tune on CPU. ``tokens``: the training set's total tokens;
    ``val_tokens``: the validation set's."""
    if n_examples <= 0:
        return 0.0
    steps = math.ceil(n_examples / batch_size) * epochs
    share = 1.0 if max_steps is None or max_steps >= steps else max_steps / steps
    training = (steps * SECONDS_PER_STEP + tokens * epochs * SECONDS_PER_TOKEN) * share
    checks = min(VAL_CHECKS, max(1, round(steps * share)))
    return training + checks * val_tokens * SECONDS_PER_TOKEN / 3


# -- reading and checking ----------------------------------------------------------------------


def _examples(source: Path) -> list[Example]:
    if not source.is_file():
        raise DatasetError(f"No training data at {source}.", hint="Give a JSONL file.")
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"Cannot read {source}: {exc}.", hint="Save it as UTF-8 JSONL.") from None
    examples, problems = [], []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            examples.append(Example(_parse(text), number))
        except ValueError as exc:
            problems.append(f"{source}:{number}: {exc}")
    if problems:
        raise DatasetError(_listing(f"{source} has {len(problems)} bad rows", problems), hint=_FORMATS_HINT)
    if not examples:
        raise DatasetError(f"{source} has no examples.", hint=_FORMATS_HINT)
    return examples


_FORMATS_HINT = (
    'Each line must be one JSON object: {"messages": [{"role": "user", "content": ...}, '
    '{"role": "assistant", "content": ...}]} or {"prompt": ..., "completion": ...}.'
)


def _parse(text: str) -> tuple[tuple[str, str], ...]:
    """A row's chat, or a ValueError that says what is wrong with it."""
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    if "messages" in row:
        return _chat(row["messages"])
    for prompt, completion in PAIRS:
        if prompt in row or completion in row:
            return (("user", _text(row, prompt)), ("assistant", _text(row, completion)))
    found = ", ".join(row) or "none"
    raise ValueError(f'missing "messages" or "prompt" and "completion" (fields found: {found})')


def _text(row: dict, name: str) -> str:
    value = row.get(name)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        value = value[0]  # a list of references: the first is the one to learn
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field {name!r} must be a non-empty string")
    return value


def _chat(messages: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(messages, list) or not messages:
        raise ValueError('"messages" must be a non-empty list')
    chat = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"messages[{index}] is not an object")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ValueError(f"messages[{index}].role must be one of {', '.join(ROLES)}, not {role!r}")
        if not isinstance(content, str):
            raise ValueError(f"messages[{index}].content must be a string")
        chat.append((role, content))
    if not any(role == "assistant" and content.strip() for role, content in chat):
        raise ValueError("no assistant message with content: nothing to learn")
    return tuple(chat)


def _check_lengths(source: Path, examples: list[Example], tokens: list[int], limit: int) -> None:
    long = [
        f"{source}:{e.line}: {count} tokens"
        for e, count in zip(examples, tokens, strict=True)
        if count > limit
    ]
    if long:
        raise DatasetError(
            _listing(f"{len(long)} examples are longer than the context window ({limit} tokens)", long),
            hint="Shorten or split them, or drop them from the file.",
        )


def _duplicates(examples: list[Example]) -> list[tuple[int, int]]:
    first: dict[tuple, int] = {}
    repeats = []
    for example in examples:
        if example.messages in first:
            repeats.append((example.line, first[example.messages]))
        else:
            first[example.messages] = example.line
    return repeats


def _listing(head: str, rows: list[str]) -> str:
    return f"{head}:\n" + "\n".join(f"  {row}" for row in rows)
