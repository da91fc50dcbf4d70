"""Grammar-constrained decoding the way llama.cpp's server does it: sample, then check.

``Llama.generate`` puts the grammar in its sampler chain, which masks every token of the
vocabulary at every step; on Qwen2.5's 151,936 tokens that halved the decode speed. Here each
step samples from the raw logits first (greedy, or the batcher's top-k/top-p/min-p chain) and
asks the grammar about that one token; only when the grammar refuses it is the vocabulary
masked and the token drawn again. The answer is the same as with the full mask (the masked
distribution's choice whenever the first one is refused), at the cost of one check per token.
Penalties go through ``Llama.generate`` instead (Engine picks); logit_bias is applied here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from modelatlas.backends import llama_adapter
from modelatlas.backends.llamacpp_batch import sample
from modelatlas.backends.llamacpp_engine import Sampling


def constrained_tokens(llm: Any, tokens: list[int], sampling: Sampling) -> Iterator[int]:
    """Tokens sampled under ``sampling.grammar``, as ``Llama.generate`` yields them: each is
    evaluated when the next is asked for, so the last decode's logits are the chosen token's."""
    assert sampling.grammar is not None
    grammar = llama_adapter.GrammarSampler(llm, sampling.grammar)
    rng = np.random.default_rng(sampling.seed)
    ids = np.array([t for t, _ in sampling.logit_bias], dtype=np.intp)
    bias = np.array([b for _, b in sampling.logit_bias], dtype=np.float32)
    try:
        kept = llama_adapter.keep_prefix(llm, tokens)
        llm.eval(tokens[kept:])
        while True:
            logits = llama_adapter.row_logits(llm, -1).astype(np.float32)
            if ids.size:
                logits[ids] += bias
            token = sample(logits, sampling, rng)
            if not grammar.allows(token):
                token = sample(grammar.mask(logits), sampling, rng)
            if not llama_adapter.ends_generation(llm, token):
                grammar.accept(token)
            yield token
            llm.eval([token])
    finally:
        grammar.close()
