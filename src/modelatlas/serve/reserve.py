"""The most a request can use, known before it runs: what a key's token and budget limits
reserve when the request is admitted (serve/limits.py), settled when its ticket closes.

Prompt tokens: counted with the model's tokenizer when the model is loaded already (cheap),
else the prompt's UTF-8 bytes, an upper bound for byte-level BPE and SentencePiece tokenizers
(a token covers at least one byte, or is one byte with byte fallback). Chat requests add an
allowance for what a chat template adds (role markers, a default system prompt: SmolLM2's
template adds 26 tokens to a one-message chat), other prompts one for BOS/EOS markers.

Output tokens: ``max_tokens`` (``max_completion_tokens``) per prompt, or, when absent, the
server's default: ``fit_max_tokens`` (serve/models.py) sends ``min(DEFAULT_MAX_TOKENS, context
left)``, so DEFAULT_MAX_TOKENS bounds it. A price per compute-hour is not reserved (how long a
request runs is not known before it runs): it is counted when the request ends.

A transcription reserves its audio's minutes at the model's price per minute when the upload's
header tells its duration (a WAV's, or what the audio decoder reads from the container's
header); otherwise nothing, and it is charged when it ends. It reserves no tokens.

An image generation reserves its ``n`` pictures at the model's price per image, and no tokens.
"""

from __future__ import annotations

import asyncio
import json

from modelatlas.catalog.records import ModelRecord
from modelatlas.serve.images import ImageJob
from modelatlas.serve.limits import Worst
from modelatlas.serve.models import DEFAULT_MAX_TOKENS, ServedModels
from modelatlas.serve.protocol import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from modelatlas.serve.transcriptions import TranscriptionJob
from modelatlas.store.keys import KeyInfo

CHAT_ALLOWANCE = 32  # tokens a chat template may add to a conversation
MESSAGE_ALLOWANCE = 8  # and to each message (role markers, separators)
PROMPT_ALLOWANCE = 4  # a plain prompt or an embedded text: begin and end markers

Request = ChatCompletionRequest | CompletionRequest | EmbeddingRequest | TranscriptionJob | ImageJob


async def worst_case(
    pool: ServedModels, key: KeyInfo | None, record: ModelRecord, req: Request
) -> Worst | None:
    """The request's worst case, or None when the key has no token or budget limit to hold."""
    if key is None or (key.tpm is None and key.budget_usd is None):
        return None  # nothing to reserve against: no need to count
    if isinstance(req, TranscriptionJob):
        seconds, price = req.estimated_seconds or 0.0, record.price
        return Worst(cost_usd=price.cost(0, 0, 0.0, seconds) if price else 0.0)
    if isinstance(req, ImageJob):
        price = record.price
        return Worst(cost_usd=price.cost(0, 0, images=req.params.n) if price else 0.0)
    texts, ids, allowance, outputs = _shape(req)
    prompt = await _count(pool, record.id, texts) + ids + allowance
    price = record.price
    cost = price.cost(prompt, outputs) if price else 0.0  # the per-hour part: at the end
    return Worst(tokens=prompt + outputs, cost_usd=cost)


def _shape(req: Request) -> tuple[list[str], int, int, int]:
    """Texts to count, token ids given as such, the template allowance, the output tokens."""
    if isinstance(req, ChatCompletionRequest):
        texts = [m.text() for m in req.messages]
        allowance = CHAT_ALLOWANCE + MESSAGE_ALLOWANCE * len(texts)
        if req.tools:  # the template writes each tool's JSON into the prompt
            texts.append(json.dumps([tool.model_dump(mode="json") for tool in req.tools]))
        outputs = (req.requested_tokens() or DEFAULT_MAX_TOKENS) * req.choices  # n answers
        return texts, 0, allowance, outputs
    if isinstance(req, EmbeddingRequest):
        inputs = req.inputs()
        texts = [item for item in inputs if isinstance(item, str)]
        ids = sum(len(item) for item in inputs if not isinstance(item, str))  # token ids as given
        return texts, ids, PROMPT_ALLOWANCE * len(inputs), 0
    prompts = req.prompts()
    texts = [p for p in prompts if isinstance(p, str)]
    ids = sum(len(p) for p in prompts if not isinstance(p, str))
    per_prompt = DEFAULT_MAX_TOKENS if req.max_tokens is None else req.max_tokens
    return texts, ids, PROMPT_ALLOWANCE * len(prompts), per_prompt * len(prompts)


async def _count(pool: ServedModels, model_id: str, texts: list[str]) -> int:
    """Tokens of ``texts``: the tokenizer's count if the model is loaded, else their bytes."""
    if model_id in pool.loaded:
        model = await pool.get(model_id)
        try:
            return await asyncio.to_thread(lambda: sum(model.count_tokens(t) for t in texts if t))
        except Exception:  # text the tokenizer refuses is the request's problem, found later
            pass
    return sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
