"""A GGUF model's own tokenizer, as serve's /tokenize, /detokenize and /tokenizer_info and
token-id embeddings use it.

Only the vocabulary is read (llama.cpp's tokenizer touches no context), so these run in any
worker thread, as ``Engine.count_tokens`` already does, without queueing behind generations.
Special tokens written in a text are parsed as such (``<|im_start|>`` is one token), as Hugging
Face tokenizers and vLLM's /tokenize do: lm-evaluation-harness finds the EOS id by tokenizing
the EOS text.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelatlas.backends.base import TokenizerFacts, too_long
from modelatlas.backends.llamacpp_engine import Engine, utf8
from modelatlas.errors import InvalidRequestError


def tokenize(engine: Engine, text: str, add_special: bool) -> list[int]:
    """``text``'s ids; ``add_special`` adds BOS where the model's tokenizer starts texts with it."""
    return engine.llm.tokenize(utf8(text, "prompt"), add_bos=add_special, special=True)


def detokenize(engine: Engine, tokens: Sequence[int]) -> str:
    """The text of ``tokens``, control tokens (BOS, ``<|im_end|>``) written as their text."""
    check_ids(engine, tokens, "tokens")
    llm = engine.llm
    # engine.piece keeps pieces longer than 32 bytes whole, but writes nothing for a control
    # token; llama.cpp's detokenize with special=True writes those.
    pieces = [engine.piece(t) or llm.detokenize([t], special=True) for t in tokens]
    return b"".join(pieces).decode("utf-8", errors="replace")


def check_ids(engine: Engine, tokens: Sequence[int], param: str) -> None:
    """Refuse an id outside the vocabulary, naming ``param[i]``."""
    n_vocab = engine.llm.n_vocab()
    for i, token in enumerate(tokens):
        if not 0 <= token < n_vocab:
            raise InvalidRequestError(
                f"'{param}[{i}]' is {token}, outside the vocabulary of {engine.path.rsplit('/', 1)[-1]} "
                f"(0 to {n_vocab - 1}).",
                hint="Send ids that /tokenize gave for this model.",
                param=f"{param}[{i}]",
            )


def facts(engine: Engine) -> TokenizerFacts:
    llm = engine.llm
    return TokenizerFacts(
        tokenizer_class="llama.cpp",
        bos_token=_special_text(engine, llm.token_bos()),
        eos_token=_special_text(engine, llm.token_eos()),
        add_bos_token=engine.adds_bos(),
        vocab_size=llm.n_vocab(),
        chat_template=llm.metadata.get("tokenizer.chat_template"),
    )


def _special_text(engine: Engine, token: int) -> str | None:
    if token < 0:
        return None
    return engine.llm.detokenize([token], special=True).decode("utf-8", errors="replace") or None


def texts_for(
    engine: Engine,
    model_id: str,
    inputs: Sequence[str] | Sequence[Sequence[int]],
    window: int,
    truncate: bool,
) -> list[str]:
    """The texts llama.cpp embeds for ``inputs``, each checked against the ``window``.

    llama-cpp-python's embed takes text only and tokenizes it itself, so token ids are sent as
    the text they decode to, and only where that text tokenizes back to the very same ids (else
    the vector would be of other tokens: a 400 naming the input). Over-long input is refused,
    or cut to its first ``window`` tokens with ``truncate``."""
    texts = []
    for i, item in enumerate(inputs):
        where = f"input[{i}]"
        ids = _as_embedded(engine, item) if isinstance(item, str) else list(item)
        if not isinstance(item, str):
            check_ids(engine, ids, where)
        if len(ids) > window:
            if not truncate:
                raise too_long(where, len(ids), window, model_id)
            ids = ids[:window]
        elif isinstance(item, str):
            texts.append(item)
            continue
        text = _plain_text(engine, ids)
        if _as_embedded(engine, text) != ids:
            raise InvalidRequestError(
                f"'{where}': these token ids do not come back as the same ids from their text, and "
                f"{model_id} (llama.cpp) embeds text.",
                hint="Send the text, or ids exactly as /tokenize gives them (with add_special_tokens true).",
                param=where,
            )
        texts.append(text)
    return texts


def _as_embedded(engine: Engine, text: str) -> list[int]:
    """The ids llama-cpp-python's embed makes of ``text`` (BOS as the model wants, special
    tokens written in the text read as plain text)."""
    return engine.llm.tokenize(utf8(text, "input"), add_bos=True, special=False)


def _plain_text(engine: Engine, ids: list[int]) -> str:
    """The text of ids, without the BOS the tokenizer adds back itself."""
    bos = engine.llm.token_bos()
    start = 1 if ids[:1] == [bos] and engine.adds_bos() else 0
    return detokenize(engine, ids[start:])
