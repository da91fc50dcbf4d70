"""Serving logic for /v1/embeddings (floats, or base64 float32 as the openai SDK asks by default).

Input is texts or token ids (the model's own, as /tokenize gives them). Input longer than the
model's window is a 400 naming ``input[i]`` with both lengths, never cut silently, unless the
request asks for ``truncate``. ``dimensions`` reaches only models that can shorten their
vectors (hosted text-embedding-3); the others refuse it, naming it. A model that is not an
embedding model (a chat model, a base model) is refused with the endpoint to use instead.
"""

from __future__ import annotations

import base64
import struct

from modelatlas.serve.models import ServedModels, check_endpoint
from modelatlas.serve.protocol import EmbeddingData, EmbeddingRequest, EmbeddingResponse, usage_info


async def embed(pool: ServedModels, req: EmbeddingRequest) -> EmbeddingResponse:
    req.check()  # text that is not valid Unicode: a 400 naming 'input', metered as one
    check_endpoint(pool.record(req.model), "embeddings")
    async with pool.slot(req.model):
        model = await pool.get(req.model)
        result = await model.embed_input(req.inputs(), req.dimensions, req.truncate)
    data = [
        EmbeddingData(index=i, embedding=_encode(vector, req.encoding_format))
        for i, vector in enumerate(result.vectors)
    ]
    return EmbeddingResponse(data=data, model=req.model, usage=usage_info(result.usage.input_tokens))


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector
