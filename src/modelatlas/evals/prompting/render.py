"""Rendering: an item (and the solved examples before it) as the prompt a model's mode needs.

Chat models get examples as earlier user/assistant turns; base models (mode "completion") get a
plain "Question:/Answer:" transcript and stop at the next question. A Jinja2 template can shape
each question.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from modelatlas.errors import ConfigError
from modelatlas.evals.image_rows import image_marks, placed
from modelatlas.items import Item
from modelatlas.parts import TextPart
from modelatlas.types import Message, Prompt

if TYPE_CHECKING:
    from jinja2 import Template

COMPLETION_STOP = ("\nQuestion:", "\n\n")


def question_text(item: Item, template: Template | None = None, marks: bool = False) -> str:
    """The user's question: the item's text, or a Jinja2 template filled with the item's fields.
    ``{{ image }}`` and ``{{ images[i] }}`` render as markers where ``marks`` (the chat message
    puts the pictures there), else as nothing."""
    if template is None:
        return item.prompt_text
    from jinja2 import UndefinedError

    fields = {**image_marks(item, marks), **item.metadata}
    try:
        return template.render(
            input=item.prompt_text, choices=item.choices, metadata=item.metadata, id=item.id, **fields
        )
    except UndefinedError as exc:
        raise ConfigError(
            f"The prompt template needs a field item {item.id!r} lacks: {exc.message}.",
            hint="Add the field to every row, or guard it in the template with {% if %}.",
        ) from None


def load_template(path: str) -> Template:
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


def render(
    item: Item, examples: list[Item], mode: str, system: str | None = None, template: Template | None = None
) -> Prompt:
    """The prompt for ``item`` with ``examples`` before it, in the form the model's mode needs."""
    if mode == "completion" and template is None and item.metadata.get("completion_prompt"):
        return _continued(item, examples, system)
    if mode == "completion":
        parts = [system.strip()] if system else []
        parts += [f"Question: {question_text(e, template)}\nAnswer: {e.reference[0]}" for e in examples]
        parts.append(f"Question: {question_text(item, template)}\nAnswer:")
        return "\n\n".join(parts)
    messages: list[Message] = [Message.system(system)] if system else []
    for example in examples:
        messages += [_asked(example, template), Message.assistant(example.reference[0])]
    if item.messages and template is None:
        messages += [m for m in item.messages if not (system and m.role == "system")]
    else:
        messages.append(_asked(item, template))
    return messages


def _asked(item: Item, template: Template | None) -> Message:
    """The user's turn: the question, with the item's sound after it when it has one (a chat
    model that takes audio hears it; the plan refuses audio for one that does not), and its
    pictures where the template places them, else before the text (image_rows.placed)."""
    if item.images:
        parts = placed(question_text(item, template, marks=True), item.images)
        return Message.user([*parts, *([item.audio] if item.audio else [])])
    text = question_text(item, template)
    if item.audio is None:
        return Message.user(text)
    return Message.user([TextPart(text=text), item.audio] if text else [item.audio])


def _continued(item: Item, examples: list[Item], system: str | None) -> str:
    """A base model continues the item's own ``completion_prompt`` (code, as HumanEval's prompt
    is), after each example's with its reference: no Question:/Answer: transcript around it."""
    parts = [system.strip()] if system else []
    parts += [f"{e.metadata.get('completion_prompt') or question_text(e)}{e.reference[0]}" for e in examples]
    parts.append(item.metadata["completion_prompt"])
    return "\n\n".join(parts)


def prompt_tokens(prompt: Prompt, count: Callable[[str], int]) -> int:
    """Tokens of a prompt by ``count`` (a model's tokenizer), with a few per message for the template."""
    if isinstance(prompt, str):
        return count(prompt)
    return sum(count(m.text) + 4 for m in prompt)


def stops_for(mode: str, item: Item | None = None) -> tuple[str, ...]:
    """Where a base model's answer ends: at the next question of the transcript it continues, or
    at the item's own ``completion_stop`` (HumanEval's: the next top-level def, class, ...)."""
    if mode != "completion":
        return ()
    own = item.metadata.get("completion_stop") if item is not None else None
    return tuple(own) if own else COMPLETION_STOP
