"""What /v1/completions does beyond one plain generation: ``echo``, ``logprobs``, ``max_tokens``
0 and a list of prompts (texts or token ids), answered whole, one choice per prompt.

Log-likelihood evaluation tools (lm-evaluation-harness ``local-completions``) score a text by
sending it with ``echo`` true, ``logprobs`` 1 and ``max_tokens`` 0 or 1, then summing
``token_logprobs`` over the continuation. Only backends that declare ``token_logprobs`` (llama.cpp)
can answer those; the others answer 400 naming the parameter.
"""

from __future__ import annotations

import time
import uuid

from modelatlas.backends.model import Model
from modelatlas.errors import InvalidRequestError
from modelatlas.serve.models import DEFAULT_MAX_TOKENS, ServedModels, fit_max_tokens
from modelatlas.serve.protocol import (
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    CompletionResponse,
    finish,
    usage_info,
)
from modelatlas.types import GenerationParams, Usage


def single_prompt(req: CompletionRequest) -> str:
    """The one text prompt of a request answered by a plain generation (a stream, say)."""
    if req.echo or req.logprobs is not None or req.max_tokens == 0:
        name = "echo" if req.echo else "logprobs" if req.logprobs is not None else "max_tokens"
        raise InvalidRequestError(
            f"'{name}' is not supported with 'stream': true.", hint="Send the request with stream false."
        )
    prompts = req.prompts()
    if len(prompts) != 1 or not isinstance(prompts[0], str):
        raise InvalidRequestError(
            "A streamed completion takes one text 'prompt', not a list of prompts or token ids.",
            hint="Send one prompt per streamed request, or stream false.",
        )
    return prompts[0]


async def complete(pool: ServedModels, req: CompletionRequest) -> CompletionResponse:
    """The whole answer: one choice per prompt, with the usage of them all."""
    req.check()
    if req.max_tokens == 0 and not req.echo:
        raise InvalidRequestError(
            "'max_tokens' 0 generates nothing.", hint="Set echo true to score the prompt, or max_tokens >= 1."
        )
    choices, usage = [], Usage()
    async with pool.slot(req.model):
        model = await pool.get(req.model, mode="text")
        for index, prompt in enumerate(req.prompts()):
            choice, used = await _choice(model, req, prompt, index)
            choices.append(choice)
            usage = usage + used
    return CompletionResponse(
        id=f"cmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=req.model,
        choices=choices,
        usage=usage_info(usage.input_tokens, usage.output_tokens),
    )


async def _choice(model: Model, req: CompletionRequest, prompt: str | list[int], index: int):
    if req.echo or req.logprobs is not None or not isinstance(prompt, str):
        return await _scored_choice(model, req, prompt, index)
    params = _params(req, await fit_max_tokens(model, prompt, req.max_tokens))
    result = await model.generate(prompt, params)
    return CompletionChoice(
        index=index, text=result.text, finish_reason=finish(result.finish_reason)
    ), result.usage


async def _scored_choice(model: Model, req: CompletionRequest, prompt: str | list[int], index: int):
    backend = model.backend
    if not backend.facts(model.record).can("token_logprobs"):
        name = "echo" if req.echo else "logprobs" if req.logprobs is not None else "prompt"
        what = "token ids in 'prompt' are" if name == "prompt" else f"'{name}' is"
        raise InvalidRequestError(
            f"{what} not supported for {model.id}: its backend ({model.record.backend}) does not give "
            "the log-probabilities of tokens.",
            hint="Use a local GGUF model (llamacpp backend), or leave out echo and logprobs.",
        )
    params = None
    if req.max_tokens != 0:
        if isinstance(prompt, str):
            params = _params(req, await fit_max_tokens(model, prompt, req.max_tokens))
        else:  # the backend checks that the token ids plus the output fit its context
            params = _params(req, req.max_tokens or DEFAULT_MAX_TOKENS)
    scored = await model.token_logprobs(prompt, params, req.logprobs or 0, req.echo)
    logprobs = None
    if req.logprobs is not None:
        logprobs = CompletionLogprobs(
            tokens=scored.tokens,
            token_logprobs=scored.token_logprobs,
            top_logprobs=scored.top_logprobs,
            text_offset=scored.text_offset,
        )
    text = scored.prompt + scored.text if req.echo else scored.text
    choice = CompletionChoice(
        index=index, text=text, finish_reason=finish(scored.finish_reason), logprobs=logprobs
    )
    return choice, scored.usage


def _params(req: CompletionRequest, max_tokens: int) -> GenerationParams:
    return GenerationParams(
        max_tokens=max_tokens,
        temperature=1.0 if req.temperature is None else req.temperature,
        top_p=1.0 if req.top_p is None else req.top_p,
        stop=req.stops(),
        seed=req.seed,
    )
