"""Serving logic for /v1/embeddings (floats, or base64 float32 as the openai SDK asks by default)."""

from __future__ import annotations

import base64
import struct

from modelatlas.serve.models import ServedModels
from modelatlas.serve.protocol import EmbeddingData, EmbeddingRequest, EmbeddingResponse, usage_info


async def embed(pool: ServedModels, req: EmbeddingRequest) -> EmbeddingResponse:
    req.check()  # text that is not valid Unicode: a 400 naming 'input', metered as one
    async with pool.slot(req.model):
        model = await pool.get(req.model)
        result = await model.embed(req.texts())
    data = [
        EmbeddingData(index=i, embedding=_encode(vector, req.encoding_format))
        for i, vector in enumerate(result.vectors)
    ]
    return EmbeddingResponse(data=data, model=req.model, usage=usage_info(result.usage.input_tokens))


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector
