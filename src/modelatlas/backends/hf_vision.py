"""Generation with a local vision-language model (image-text-to-text) in the transformers backend.

A chat prompt goes through the processor's chat template, each image part becoming the
template's image entry, and then through the processor itself with the images opened by Pillow
(from the part's bytes or its file). The processor decides image size: it resizes, crops and
tiles each picture as the model was trained (LLaVA's CLIP processor to its crop size, SmolVLM and
Qwen2-VL to their own pixel limits), and expands each image entry into as many image tokens as
the model reads. Those tokens are part of the prompt, so ``usage.input_tokens`` counts them,
and so does the context check.

An image given by URL is refused: this backend never fetches anything. Pictures larger than
Pillow's decompression-bomb limit (about 179 megapixels) are refused too.
"""

from __future__ import annotations

import io
import threading
from typing import Any

from modelatlas.backends.base import require
from modelatlas.errors import ConfigError, InvalidRequestError
from modelatlas.parts import ImagePart, TextPart
from modelatlas.types import Message, Prompt

__all__ = ["generate_locked", "vision_inputs"]


def generate_locked(backend: Any, loaded: Any, prompt: Prompt, params: Any, streamer: Any, halt: Any):
    """One generation for ``prompt`` (the caller holds no lock; this takes the model's). The
    TransformersBackend's own sampling, stop and end-of-text rules apply, as on the text path."""
    from modelatlas.backends.hf import Halt, Outcome, _eos_ids, _sampling

    torch = require("torch", extra="vision")
    inputs = vision_inputs(loaded.processor, prompt)  # opens the images outside the lock
    with loaded.lock, torch.inference_mode():
        inputs = inputs.to(loaded.model.dtype)  # casts floating tensors (pixels) only
        prompt_tokens = int(inputs["input_ids"].shape[1])  # image tokens included
        backend._check_context(loaded, prompt_tokens, params.max_tokens)
        tokenizer = loaded.tokenizer
        criterion = Halt(tokenizer, params.stop, prompt_tokens, halt or threading.Event())
        output = loaded.model.generate(
            **inputs,
            max_new_tokens=params.max_tokens,
            pad_token_id=tokenizer.pad_token_id,
            stopping_criteria=[criterion],
            streamer=streamer,
            **_sampling(torch, params),
        )
        new = output[0, prompt_tokens:].tolist()
        text = tokenizer.decode(new, skip_special_tokens=True)
        return Outcome(text, prompt_tokens, len(new), bool(new) and new[-1] in _eos_ids(loaded))


def vision_inputs(processor: Any, prompt: Prompt) -> Any:
    """The processor's tensors for ``prompt``: its token ids (each image expanded into its image
    tokens), attention mask and pixel values. A plain string is sent as it is, without images."""
    if isinstance(prompt, str):
        return processor(text=[prompt], return_tensors="pt")
    if not getattr(processor, "chat_template", None):
        raise ConfigError(
            "This vision model's processor has no chat template, so a chat cannot be rendered.",
            hint="Save a chat template with the processor (chat_template.jinja), or send a plain string.",
        )
    messages, images = [], []
    for i, message in enumerate(prompt):
        messages.append(_message(message, i, images))
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return processor(text=[text], images=images or None, return_tensors="pt")


def _message(message: Message, index: int, images: list) -> dict[str, Any]:
    """A message in the processor's chat shape (a list of typed entries), its images added."""
    content: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            content.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            images.append(open_image(part, index))
            content.append({"type": "image"})
        else:
            raise InvalidRequestError(
                f"messages[{index}] holds a {part.type} part; a vision model takes text and images.",
                hint="Send only text and image parts to this model.",
                param=f"messages[{index}]",
            )
    return {"role": message.role, "content": content}


def open_image(part: ImagePart, index: int = 0) -> Any:
    """The part's picture as an RGB Pillow image (its bytes, or its file read now)."""
    if part.url is not None:
        raise InvalidRequestError(
            f"messages[{index}] holds an image by URL ({part.url[:80]}); a local model is not sent "
            "URLs and modelatlas never fetches one.",
            hint="Download the image and send its bytes (a data: URL) or a file path.",
            param=f"messages[{index}]",
        )
    pil = require("PIL.Image", extra="vision", package="Pillow")
    try:
        with pil.open(io.BytesIO(part.read())) as picture:
            return picture.convert("RGB")
    except (pil.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
        source = str(part.path) if part.path is not None else f"the {part.media()} bytes"
        raise InvalidRequestError(
            f"messages[{index}]: cannot read {source} as an image ({type(exc).__name__}: {exc}).",
            hint="Send a PNG, JPEG, GIF or WebP picture of a sane size.",
            param=f"messages[{index}]",
        ) from None
