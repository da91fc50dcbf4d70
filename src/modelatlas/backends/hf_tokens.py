"""A transformers model's own tokenizer for serve's /tokenize, /detokenize and /tokenizer_info,
and embeddings of token ids or of texts checked against the model's window.

Token ids are the model's own (as /tokenize gives them, [CLS] and [SEP] included for a BERT
encoder such as all-MiniLM), fed to the model as they are: the vector of ids equals the vector
of the text they came from. Ids from another tokenizer (OpenAI's tiktoken ids, which
LangChain's OpenAIEmbeddings sends by default) mean other tokens here, as they do to vLLM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelatlas.backends.base import TokenizerFacts, require, too_long
from modelatlas.backends.hf_load import Loaded
from modelatlas.errors import InvalidRequestError


def tokenize(loaded: Loaded, text: str, add_special: bool) -> list[int]:
    with loaded.lock:
        return list(loaded.tokenizer(text, add_special_tokens=add_special)["input_ids"])


def detokenize(loaded: Loaded, tokens: Sequence[int]) -> str:
    check_ids(loaded, tokens, "tokens")
    with loaded.lock:
        return loaded.tokenizer.decode(list(tokens))


def check_ids(loaded: Loaded, tokens: Sequence[int], param: str) -> None:
    """Refuse an id outside the vocabulary, naming ``param[i]``."""
    size = len(loaded.tokenizer)
    for i, token in enumerate(tokens):
        if not 0 <= token < size:
            raise InvalidRequestError(
                f"'{param}[{i}]' is {token}, outside the model's vocabulary (0 to {size - 1}).",
                hint="Send ids that /tokenize gave for this model.",
                param=f"{param}[{i}]",
            )


def facts(loaded: Loaded) -> TokenizerFacts:
    tokenizer = loaded.tokenizer
    with loaded.lock:
        starts = tokenizer("a", add_special_tokens=True)["input_ids"][:1]
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
    return TokenizerFacts(
        tokenizer_class=type(tokenizer).__name__,
        bos_token=tokenizer.bos_token,
        eos_token=tokenizer.eos_token,
        pad_token=tokenizer.pad_token,
        add_bos_token=bos is not None and starts == [bos],
        vocab_size=len(tokenizer),
        chat_template=getattr(tokenizer, "chat_template", None),
    )


def checked_ids(
    loaded: Loaded,
    model_id: str,
    inputs: Sequence[str] | Sequence[Sequence[int]],
    window: int | None,
    truncate: bool,
) -> list[list[int]]:
    """Each input's ids as the model reads them (special tokens added to a text), refused when
    longer than ``window`` or, with ``truncate``, cut to it (a text by its tokenizer, which
    keeps the closing [SEP]; ids to their first ``window``)."""
    result = []
    for i, item in enumerate(inputs):
        if isinstance(item, str):
            ids = tokenize(loaded, item, True)
            if window is not None and len(ids) > window and truncate:
                with loaded.lock:
                    encoded = loaded.tokenizer(item, truncation=True, max_length=window)
                ids = list(encoded["input_ids"])
        else:
            ids = list(item)
            check_ids(loaded, ids, f"input[{i}]")
            if window is not None and truncate:
                ids = ids[:window]
        if window is not None and len(ids) > window:
            raise too_long(f"input[{i}]", len(ids), window, model_id)
        result.append(ids)
    return result


def embed_ids(loaded: Loaded, ids: list[list[int]], normalize: bool) -> list[list[float]]:
    """One vector per id list, each run alone (no padding to match), as the model embeds its text."""
    torch = require("torch", extra="finetune")
    vectors = []
    with loaded.lock, torch.inference_mode():
        for row in ids:
            encoded = {
                "input_ids": torch.tensor([row]),
                "attention_mask": torch.ones(1, len(row), dtype=torch.long),
            }
            vector = _forward(loaded, encoded)
            if normalize:
                vector = torch.nn.functional.normalize(vector, dim=-1)
            vectors.append(vector[0].float().cpu().tolist())
    return vectors


def _forward(loaded: Loaded, encoded: dict[str, Any]) -> Any:
    if loaded.sentence_transformer:
        return loaded.model.forward(dict(encoded))["sentence_embedding"]
    from modelatlas.backends.hf import _mean_pool

    return _mean_pool(loaded.model, encoded, normalize=False)
