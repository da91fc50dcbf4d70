"""RAG: the best chunks of a knowledge base before the question, as numbered sources."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelatlas.evals.prompting.base import Prepared, PromptSetup, PromptStrategy
from modelatlas.evals.prompting.render import prompt_tokens, question_text, stops_for
from modelatlas.items import Item

if TYPE_CHECKING:
    from modelatlas.backends.model import Model

DEFAULT_K = 4


@dataclass(frozen=True)
class Rag(PromptStrategy):
    """``k`` chunks of the knowledge base ``kb``, packed into what the context window leaves."""

    kb: str
    k: int = DEFAULT_K
    name: str = ""  # as written, "rag:handbook" or "rag:handbook:3"; filled when not given

    def __post_init__(self) -> None:
        if not self.name:
            tail = "" if self.k == DEFAULT_K else f":{self.k}"
            object.__setattr__(self, "name", f"rag:{self.kb}{tail}")

    def check(self, items: list[Item], pool: list[Item]) -> None:
        from modelatlas.rag.search import open_kb

        open_kb(self.kb)  # an unknown knowledge base fails here, with "did you mean"

    async def prepare(self, item: Item, model: Model, setup: PromptSetup) -> Prepared:
        from modelatlas.rag.ask import context_prompt, pack
        from modelatlas.rag.search import open_kb

        mode = model.record.mode
        question = question_text(item, setup.template)
        hits = await open_kb(self.kb).asearch(question, k=self.k)
        limit = setup.budget(model)
        dropped = 0
        if limit is not None:
            empty = context_prompt(question, [], mode, setup.system)
            hits, dropped = pack(hits, limit - prompt_tokens(empty, model.count_tokens), model.count_tokens)
        prompt = context_prompt(question, hits, mode, setup.system)
        return Prepared(
            prompt,
            stops_for(mode),
            prompt_tokens(prompt, model.count_tokens),
            dropped,
            retrieved=[h.chunk_id for h in hits],
            contexts=[h.text for h in hits],
        )

    # preview: the question alone (PromptStrategy's). The sources are known only after a search,
    # which a dry run must not make (the knowledge base's embedder may be a paid API).
