"""A tiny randomly initialised CLIP (model, tokenizer and image processor), written by the tests.

The clip_score tests need a real CLIP folder that transformers loads offline: ``CLIPModel`` with a
small config, a byte-level BPE ``CLIPTokenizer`` whose vocabulary this module writes, and a
``CLIPImageProcessor`` that resizes and crops to 32x32. The weights are random (seeded), so the
scores mean nothing about the pictures; what the tests check is that ours and torchmetrics' give
the same numbers on the same images, prompts and model.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["TINY_CLIP_SIZE", "build_tiny_clip"]

TINY_CLIP_SIZE = 32  # the image side the processor crops to and the vision tower takes


def _bytes_as_text() -> list[str]:
    """One printable character per byte, the mapping byte-level BPE (GPT-2, CLIP) uses."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    shifted = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(shifted)) for b in range(256)]


def _write_vocabulary(folder: Path) -> int:
    """vocab.json and merges.txt: every byte alone and ending a word, a few merges, the two
    specials (start and end of text). Returns the vocabulary's size."""
    chars = _bytes_as_text()
    merges = [("t", "h"), ("a", "n"), ("o", "r"), ("th", "e</w>")]  # each side a token before it
    tokens = [*chars, *(c + "</w>" for c in chars), *("".join(m) for m in merges)]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    lines = ["#version: 0.2", *(f"{a} {b}" for a, b in merges)]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(vocab)


def _model(vocab_size: int):
    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    text = {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 77,
        "bos_token_id": vocab_size - 2,
        "eos_token_id": vocab_size - 1,
        "pad_token_id": vocab_size - 1,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": TINY_CLIP_SIZE,
        "patch_size": 8,
    }
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
    return CLIPModel(config).eval()


def build_tiny_clip(folder: str | Path) -> Path:
    """Write the tiny CLIP (config, weights, tokenizer, processor) into ``folder``; returns it."""
    from transformers import CLIPImageProcessor, CLIPProcessor, CLIPTokenizer

    target = Path(folder)
    source = target / "vocabulary-source"
    source.mkdir(parents=True, exist_ok=True)
    size = _write_vocabulary(source)
    tokenizer = CLIPTokenizer(str(source / "vocab.json"), str(source / "merges.txt"), model_max_length=77)
    images = CLIPImageProcessor(
        size={"shortest_edge": TINY_CLIP_SIZE}, crop_size={"height": TINY_CLIP_SIZE, "width": TINY_CLIP_SIZE}
    )
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(target)
    _model(size).save_pretrained(target)
    for name in ("vocab.json", "merges.txt"):
        (source / name).unlink()
    source.rmdir()
    return target
