"""Images into GGUF models through llama.cpp's multimodal projector (libmtmd).

A vision GGUF comes as two files: the language model and its projector (``mmproj-*.gguf``,
which holds the vision encoder). The projector is the option ``mmproj``, else the one
``mmproj*.gguf`` file beside the model (the first by name when there are several). With one,
the model takes images; without one, it takes text only and says so.

A prompt holding images is answered through llama-cpp-python's ``MTMDChatHandler``: the model's
own chat template renders the messages, each image becoming libmtmd's media marker, and libmtmd
turns each picture into as many embedding positions as its encoder makes (it resizes to the
projector's image size). Those positions are prompt tokens: ``usage.input_tokens`` is
llama.cpp's own prompt count, image positions included. The answer comes whole, as one chunk
(the handler's stream carries no token counts); a prompt without images takes the usual path.

An image by URL is refused (the handler would fetch it; modelatlas never fetches). After each
call the shared context is reset, so no later prompt reuses cache cells that held a picture.
"""

from __future__ import annotations

import functools
import re
import threading
from pathlib import Path
from typing import Any

from modelatlas.backends.channel import Done, Failed, Text
from modelatlas.backends.messages import as_messages
from modelatlas.errors import ConfigError, ContextLengthExceededError, InvalidRequestError, ModelFileError
from modelatlas.parts import ImagePart
from modelatlas.types import Prompt

__all__ = ["has_images", "projector_path", "run"]

_OVERFLOW = re.compile(r"exceeds n_ctx: (\d+) > (\d+)")
_handlers: dict[tuple[str, str], Any] = {}  # (model file, projector): its handler, made once


def projector_path(location: str | None, option: str | None) -> Path | None:
    """The projector for a model file: the ``mmproj`` option, else an mmproj*.gguf beside it."""
    if option:
        return Path(option).expanduser()
    if not location:
        return None
    folder = Path(location).expanduser().parent
    try:
        found = _projectors(str(folder), folder.stat().st_mtime_ns)
    except OSError:  # the folder is gone or unreadable: no projector
        return None
    return Path(found[0]) if found else None


@functools.lru_cache(maxsize=256)
def _projectors(folder: str, mtime_ns: int) -> tuple[str, ...]:
    """The mmproj*.gguf files in ``folder`` (cached by its modification time: facts ask often)."""
    try:
        names = sorted(p.name for p in Path(folder).iterdir() if p.is_file())
    except OSError:
        return ()
    found = [n for n in names if n.lower().startswith("mmproj") and n.lower().endswith(".gguf")]
    return tuple(str(Path(folder) / n) for n in found)


def has_images(prompt: Prompt) -> bool:
    if isinstance(prompt, str):
        return False
    return any(isinstance(part, ImagePart) for message in prompt for part in message.parts)


def run(backend: Any, prompt: Prompt, sampling: Any, cancel: threading.Event, channel: Any) -> None:
    """Answer a prompt with images on the engine thread, handing Text then Done to ``channel``."""
    try:
        if cancel.is_set():  # the caller left while this call waited its turn
            return
        text, prompt_tokens, output_tokens, finish = _answer(backend, prompt, sampling)
        if text:
            channel.put(Text(text), urgent=True)
        channel.put(Done(finish, prompt_tokens, output_tokens), urgent=True)
    except BaseException as exc:  # whatever it is, the caller must hear of it
        channel.put(Failed(exc), urgent=True)


def _answer(backend: Any, prompt: Prompt, sampling: Any) -> tuple[str, int, int, str]:
    from modelatlas.backends.llama_adapter import quiet_stderr

    projector = projector_path(backend.location, backend.options.mmproj)
    if projector is None:
        raise InvalidRequestError(
            f"{backend.model_id} takes no images: no multimodal projector (mmproj*.gguf) is beside "
            f"{Path(backend.location).name} and the option mmproj is not set.",
            hint="Put the model's mmproj .gguf file beside it, or set the option mmproj to its path.",
        )
    _refuse_urls(prompt)
    handler = _handler(backend.engine.path, projector)  # a missing projector fails before loading
    messages = as_messages(prompt)  # images as data: URLs, which the handler decodes
    llm = backend.engine.llm
    try:
        with quiet_stderr():
            response = handler(
                llama=llm,
                messages=messages,
                max_tokens=sampling.max_tokens,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                top_k=40 if sampling.temperature > 0 else 1,  # as the text path samples
                repeat_penalty=1.0,
                seed=sampling.seed,
                stop=list(sampling.stop),
            )
    except ValueError as exc:
        raise _translate(exc, backend, sampling.max_tokens) from exc
    finally:
        llm.reset()  # the cache held picture positions: no later prompt may reuse them
    choice, usage = response["choices"][0], response["usage"]
    finish = "length" if choice.get("finish_reason") == "length" else "stop"
    text = choice["message"].get("content") or ""
    return text, usage["prompt_tokens"], usage["completion_tokens"], finish


def _handler(model_path: str, projector: Path) -> Any:
    from modelatlas.backends import llama_adapter

    key = (model_path, str(projector))
    if key not in _handlers:
        if not projector.is_file():
            raise ModelFileError(
                f"The multimodal projector {projector} does not exist.",
                hint="Fix the option mmproj, or put the model's mmproj .gguf file beside it.",
            )
        _handlers[key] = llama_adapter.flat_mtmd_handler()(clip_model_path=str(projector), verbose=False)
    return _handlers[key]


def _refuse_urls(prompt: Prompt) -> None:
    for i, message in enumerate(prompt):
        for part in message.parts:
            if isinstance(part, ImagePart) and part.url is not None:
                raise InvalidRequestError(
                    f"messages[{i}] holds an image by URL ({part.url[:80]}); a local model is not "
                    "sent URLs and modelatlas never fetches one.",
                    hint="Download the image and send its bytes (a data: URL) or a file path.",
                    param=f"messages[{i}]",
                )


def _translate(exc: ValueError, backend: Any, max_tokens: int) -> Exception:
    """llama-cpp-python's ValueError as the error that says what to do."""
    text = str(exc)
    overflow = _OVERFLOW.search(text)
    if overflow:
        needed, limit = int(overflow[1]), int(overflow[2])
        return ContextLengthExceededError(backend.model_id, needed, max_tokens, limit)
    if "Failed to load mtmd context" in text or "Vision is not supported" in text:
        return ModelFileError(
            f"llama.cpp could not load the projector for {backend.model_id}: {text}.",
            hint="Use the mmproj file made for this very model (its sizes must match the model's).",
        )
    if "chat_template" in text:
        return ConfigError(
            f"{Path(backend.location).name} has no chat template, which image prompts need: {text}.",
            hint="Use a GGUF file that carries tokenizer.chat_template.",
        )
    return InvalidRequestError(f"llama.cpp refused the image prompt: {text}.", hint="Check the images.")
