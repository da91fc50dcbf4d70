"""The training loop: examples to token ids with the prompt masked, LoRA, AdamW, losses.

An example is rendered with the tokenizer's chat template one turn at a time, so the tokens of
every assistant turn (its end-of-turn token included: the model learns to stop) are the
targets and everything else is labelled -100, which the loss ignores. A tokenizer without a
chat template gets the messages one per line and the end-of-text token after each answer.
"""

from __future__ import annotations

import logging
import math
import random
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelatlas.backends.base import require
from modelatlas.errors import ConfigError
from modelatlas.strategies.finetune.data import VAL_CHECKS, Example

log = logging.getLogger(__name__)

IGNORE = -100
# Linear layers that LoRA adapts: the attention projections, as the common families name them.
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj", "c_attn", "query", "key", "value", "qkv_proj", "Wqkv")


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    labels: list[int]


@dataclass(frozen=True)
class Step:
    """One optimizer step, as the progress callback and the store see it."""

    step: int  # 1-based
    total: int
    epoch: int  # 1-based
    loss: float
    val_loss: float | None = None


def encode(tokenizer: Any, example: Example) -> Encoded:
    """Token ids and labels of ``example``: only the assistant turns are learnt."""
    chat = example.chat
    if not getattr(tokenizer, "chat_template", None):
        return _encode_plain(tokenizer, chat)
    segments: list[tuple[str, bool]] = []  # (text, is it a target)
    done = ""
    for index, message in enumerate(chat):
        if message["role"] != "assistant":
            continue
        head = tokenizer.apply_chat_template(chat[:index], tokenize=False, add_generation_prompt=True)
        whole = tokenizer.apply_chat_template(chat[: index + 1], tokenize=False)
        if not (head.startswith(done) and whole.startswith(head)):  # the template re-renders earlier turns
            log.warning(
                "The chat template is not prefix-stable at line %d: training on every token.", example.line
            )
            return _segments(tokenizer, [(tokenizer.apply_chat_template(chat, tokenize=False), True)])
        segments += [(head[len(done) :], False), (whole[len(head) :], True)]
        done = whole
    return _segments(tokenizer, segments)


def _encode_plain(tokenizer: Any, chat: list[dict]) -> Encoded:
    eos = tokenizer.eos_token or ""
    segments = [
        (m["content"] + eos + "\n", True) if m["role"] == "assistant" else (m["content"] + "\n", False)
        for m in chat
    ]
    encoded = _segments(tokenizer, segments)
    bos = tokenizer.bos_token_id
    return Encoded([bos, *encoded.ids], [IGNORE, *encoded.labels]) if bos is not None else encoded


def _segments(tokenizer: Any, segments: list[tuple[str, bool]]) -> Encoded:
    ids: list[int] = []
    labels: list[int] = []
    for text, target in segments:
        part = list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []
        ids += part
        labels += part if target else [IGNORE] * len(part)
    return Encoded(ids, labels)


def total_steps(n_examples: int, batch_size: int, epochs: int, max_steps: int | None) -> int:
    steps = math.ceil(n_examples / batch_size) * epochs
    return min(steps, max_steps) if max_steps else steps


def add_lora(model: Any, r: int, seed: int) -> Any:
    """``model`` with LoRA (rank r, alpha 2r, dropout 0.05) on its attention projections."""
    torch, peft = require("torch", extra="finetune"), require("peft", extra="finetune")
    linear = {
        name.rsplit(".", 1)[-1] for name, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)
    }
    targets = [name for name in ATTENTION if name in linear]
    if not targets:
        raise ConfigError(
            f"Cannot find the attention projections to adapt (linear layers: {', '.join(sorted(linear))}).",
            hint="LoRA fine-tuning supports decoder models with q/k/v/o or c_attn projections.",
        )
    torch.manual_seed(seed)  # LoRA's A matrices start random
    config = peft.LoraConfig(
        r=r, lora_alpha=2 * r, lora_dropout=0.05, target_modules=targets, task_type="CAUSAL_LM"
    )
    with warnings.catch_warnings():  # peft reads a property that transformers 5 deprecates
        warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
        return peft.get_peft_model(model, config)


def train(
    model: Any,
    data: list[Encoded],
    val: list[Encoded] | None,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    max_steps: int | None,
    pad_id: int,
    on_step: Callable[[Step], None],
) -> list[Step]:
    """Train ``model`` in place with AdamW at a constant rate; ``on_step`` sees every step."""
    torch = require("torch", extra="finetune")
    total = total_steps(len(data), batch_size, epochs, max_steps)
    every = max(1, total // VAL_CHECKS)  # validation loss: about VAL_CHECKS times, and at the end
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    steps: list[Step] = []
    for epoch in range(1, epochs + 1):
        order = list(range(len(data)))
        random.Random(seed * 1000 + epoch).shuffle(order)
        for start in range(0, len(order), batch_size):
            model.train()
            loss = model(**collate([data[i] for i in order[start : start + batch_size]], pad_id)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            number = len(steps) + 1
            checked = val and (number % every == 0 or number == total)
            step = Step(
                number, total, epoch, loss.item(), evaluate(model, val, batch_size) if checked else None
            )
            steps.append(step)
            on_step(step)
            if number >= total:
                return steps
    return steps


def evaluate(model: Any, data: list[Encoded], batch_size: int) -> float:
    """The mean loss per target token over ``data``, without dropout or gradients."""
    torch = require("torch", extra="finetune")
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            batch = collate(data[start : start + batch_size], pad_id=0)
            targets = int((batch["labels"][:, 1:] != IGNORE).sum())
            if targets:
                total += float(model(**batch).loss) * targets
            count += targets
    model.train()
    return total / count if count else float("nan")


def collate(batch: list[Encoded], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors: input ids, attention mask, and labels with padding ignored."""
    torch = require("torch", extra="finetune")
    width = max(len(e.ids) for e in batch)
    ids = [e.ids + [pad_id] * (width - len(e.ids)) for e in batch]
    labels = [e.labels + [IGNORE] * (width - len(e.labels)) for e in batch]
    mask = [[1] * len(e.ids) + [0] * (width - len(e.ids)) for e in batch]
    return {
        "input_ids": torch.tensor(ids),
        "attention_mask": torch.tensor(mask),
        "labels": torch.tensor(labels),
    }
