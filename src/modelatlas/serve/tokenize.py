"""Serving logic for ``POST /tokenize``, ``POST /detokenize`` and ``GET /tokenizer_info``: a
served model's own tokenizer, in the shapes vLLM answers and lm-evaluation-harness's remote
tokenizer (``tokenizer_backend=remote``) reads, so a log-likelihood evaluation needs no
tokenizer of its own.

lm-eval sends ``{"prompt", "add_special_tokens": false}`` and reads ``tokens``; sends
``{"tokens"}`` and reads ``prompt``; reads ``eos_token``, ``bos_token`` and ``pad_token`` from
the info (it finds their ids by tokenizing their text, so special tokens written in a text are
parsed as such, as Hugging Face tokenizers do). It names no model: with one model served (or one
the key may use) that one answers; otherwise ``model`` (a query parameter for the info) picks it.
llama-server's field names (``content``, ``add_special``, ``with_pieces``) are read too. A chat
(``messages``, ``tools``: vLLM's chat variant) gives the templated prompt's tokens, what the
model reads and the context window counts.
"""

from __future__ import annotations

import asyncio

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from modelatlas.backends.model import Model
from modelatlas.errors import InvalidRequestError, UnknownModelError
from modelatlas.serve import chat_params
from modelatlas.serve.content import to_messages
from modelatlas.serve.models import ServedModels
from modelatlas.serve.protocol import ChatMessage, ToolDef
from modelatlas.store.keys import KeyInfo
from modelatlas.types import GenerationParams


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True)


class TokenizeRequest(_Request):
    """A text (``prompt``), or a chat (``messages``, with the ``tools`` the template renders)
    as vLLM's chat variant takes it: the tokens the model reads for it, template and all."""

    model: str | None = None
    prompt: str | None = Field(None, validation_alias=AliasChoices("prompt", "content"))
    messages: list[ChatMessage] | None = None
    tools: list[ToolDef] | None = None
    add_generation_prompt: bool = True
    add_special_tokens: bool = Field(True, validation_alias=AliasChoices("add_special_tokens", "add_special"))
    return_token_strs: bool = Field(False, validation_alias=AliasChoices("return_token_strs", "with_pieces"))


class TokenizeResponse(BaseModel):
    count: int
    max_model_len: int | None
    tokens: list[int]
    token_strs: list[str] | None = None


class DetokenizeRequest(_Request):
    model: str | None = None
    tokens: list[int]


class DetokenizeResponse(BaseModel):
    prompt: str


class TokenizerInfo(BaseModel):
    """vLLM's ``/tokenizer_info`` fields that describe the tokenizer, and the model it is."""

    model: str
    tokenizer_class: str
    bos_token: str | None
    eos_token: str | None
    pad_token: str | None
    add_bos_token: bool
    vocab_size: int | None
    model_max_length: int | None
    chat_template: str | None


def model_for(pool: ServedModels, key: KeyInfo | None, model_id: str | None) -> str:
    """The served model a tokenizer request means: the one named, else the only one."""
    allowed = [m for m in pool.records if key is None or key.allows(m)]
    if model_id is None:
        if len(allowed) == 1:
            return allowed[0]
        raise InvalidRequestError(
            f"Several models are served ({', '.join(allowed)}): say whose tokenizer to use.",
            hint='Add "model" to the request body (GET /tokenizer_info: ?model=ID), or serve one model.',
            param="model",
        )
    if model_id not in allowed:
        raise UnknownModelError(model_id, allowed)  # "did you mean", among what the key may use
    return model_id


async def tokenize(pool: ServedModels, key: KeyInfo | None, req: TokenizeRequest) -> TokenizeResponse:
    model = await _model(pool, key, req.model)
    if req.messages is not None:
        _check_chat(req)
        params = GenerationParams(tools=chat_params.tools_of(req))
        prompt = to_messages(req.messages)
        tokens = await asyncio.to_thread(model.backend.prompt_tokens, prompt, params)
    elif req.prompt is not None:
        tokens = await asyncio.to_thread(model.backend.tokenize, req.prompt, req.add_special_tokens)
    else:
        raise InvalidRequestError(
            "Send 'prompt' (a text) or 'messages' (a chat) to tokenize.", param="prompt"
        )
    strs = None
    if req.return_token_strs:
        strs = await asyncio.to_thread(lambda: [model.backend.detokenize([t]) for t in tokens])
    window = await asyncio.to_thread(lambda: model.context_length)
    return TokenizeResponse(count=len(tokens), max_model_len=window, tokens=tokens, token_strs=strs)


def _check_chat(req: TokenizeRequest) -> None:
    if req.prompt is not None:
        raise InvalidRequestError(
            "Send 'prompt' or 'messages', not both.", hint="Leave one out.", param="messages"
        )
    if not req.add_generation_prompt:
        raise InvalidRequestError(
            "'add_generation_prompt' false is not supported: the chat template is rendered as a "
            "generation reads it, with the assistant's turn opened.",
            hint="Leave 'add_generation_prompt' out.",
            param="add_generation_prompt",
        )


async def detokenize(pool: ServedModels, key: KeyInfo | None, req: DetokenizeRequest) -> DetokenizeResponse:
    model = await _model(pool, key, req.model)
    return DetokenizeResponse(prompt=await asyncio.to_thread(model.backend.detokenize, req.tokens))


async def tokenizer_info(pool: ServedModels, key: KeyInfo | None, model_id: str | None) -> TokenizerInfo:
    model = await _model(pool, key, model_id)
    facts = await asyncio.to_thread(model.backend.tokenizer_facts)
    window = await asyncio.to_thread(lambda: model.context_length)
    return TokenizerInfo(
        model=model.id,
        tokenizer_class=facts.tokenizer_class,
        bos_token=facts.bos_token,
        eos_token=facts.eos_token,
        pad_token=facts.pad_token,
        add_bos_token=facts.add_bos_token,
        vocab_size=facts.vocab_size,
        model_max_length=window,
        chat_template=facts.chat_template,
    )


async def _model(pool: ServedModels, key: KeyInfo | None, model_id: str | None) -> Model:
    return await pool.get(model_for(pool, key, model_id))
