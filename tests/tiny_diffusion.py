"""A tiny randomly initialised Stable-Diffusion-style pipeline, written by the tests.

The image-generation tests need a real diffusers text-to-image pipeline that loads offline and runs
in well under a second a step on a CPU. Its weights are random (seeded, so the folder is the same
every time), which is all the tests need: the pictures are noise, but their size, their seeds and
the pipeline's behaviour (negative prompts, guidance, step callbacks) are real.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

__all__ = ["TINY_SD_SIZE", "build_tiny_sd", "one_torch_thread"]

TINY_SD_SIZE = 32  # the pipeline's default image side in pixels (unet sample 16 x vae factor 2)


def _byte_alphabet() -> list[str]:
    """The 256 printable characters byte-level BPE uses for the bytes (GPT-2's mapping)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    keep += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for byte in range(256):
        if byte in keep:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def _write_tokenizer(folder: Path) -> int:
    """A CLIP tokenizer's vocab.json and merges.txt: every byte, alone and ending a word, plus a
    few merges so that common words are one token. Returns the vocabulary size."""
    alphabet = _byte_alphabet()
    merges = [("l", "i"), ("g", "h"), ("t", "h"), ("o", "u"), ("s", "e"), ("a", "t")]
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(vocab)


def _components(vocab_size: int):
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=TINY_SD_SIZE // 2,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(16, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=TINY_SD_SIZE,
    )
    text = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=vocab_size - 2,
            eos_token_id=vocab_size - 1,
            pad_token_id=vocab_size - 1,
        )
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
    )
    return unet, vae, text, scheduler


def build_tiny_sd(folder: str | Path) -> Path:
    """Write the tiny pipeline (model_index.json and its parts) into ``folder``; returns it."""
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTokenizer

    target = Path(folder)
    words = target / "tokenizer-source"
    words.mkdir(parents=True, exist_ok=True)
    vocab_size = _write_tokenizer(words)
    tokenizer = CLIPTokenizer(str(words / "vocab.json"), str(words / "merges.txt"), model_max_length=77)
    unet, vae, text, scheduler = _components(vocab_size)
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(target)
    for name in ("vocab.json", "merges.txt"):
        (words / name).unlink()
    words.rmdir()
    return target


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread while a module of these tests runs (restored after): on a busy two-core
    machine a 2-step 32x32 picture took 4.7 s with two threads spinning against other work,
    0.25 s with one. Import it into a test module to use it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
