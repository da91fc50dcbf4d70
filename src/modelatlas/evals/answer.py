"""Answer one item with one arm (a model and a strategy), then score it with every metric."""

from __future__ import annotations

from modelatlas.backends.model import Model
from modelatlas.errors import ModelAtlasError
from modelatlas.evals.metrics.base import Context, Metric
from modelatlas.evals.plan import Plan
from modelatlas.evals.types import Item, Output, Score
from modelatlas.strategies.prompting import Strategy, examples_for, prompt_tokens, render, stops_for

MARGIN = 16  # tokens kept free for the chat template's own markers


async def answer(model: Model, strategy: Strategy, item: Item, plan: Plan) -> Output:
    """The model's output for ``item``; a failure becomes ``Output.error``, never an exception."""
    prompt, extra = None, {}
    try:
        if item.choices and item.answer is not None and "mc_accuracy" in plan.metrics:
            return await _choose(model, strategy, item, plan)
        if strategy.kb:
            prompt, extra = await _with_context(model, strategy, item, plan)
        else:
            prompt, extra = _with_examples(model, strategy, item, plan)
        done = await model.generate(
            prompt,
            max_tokens=plan.max_tokens,
            temperature=plan.temperature,
            stop=stops_for(model.record.mode),
        )
    except ModelAtlasError as exc:
        return Output(error=exc.message, prompt=prompt, **extra)
    return Output(
        text=done.text.strip(),
        usage=done.usage,
        latency_s=done.timing.latency_s,
        ttft_s=done.timing.ttft_s,
        cached=done.cached,
        prompt=prompt,
        **extra,
    )


def shots(strategy: Strategy, examples: list) -> dict:
    """How many examples a few-shot prompt holds and how many fewer than asked (for any reason)."""
    if not strategy.shots:
        return {}
    return {"examples": len(examples), "examples_short": strategy.shots - len(examples)}


def budget(model: Model, plan: Plan) -> int | None:
    """Tokens a prompt may use: the context window less the answer and a margin (None: unknown)."""
    window = model.context_length
    return None if window is None else window - plan.max_tokens - MARGIN


def _with_examples(model: Model, strategy: Strategy, item: Item, plan: Plan):
    """Few-shot examples, dropping the last ones while the prompt would overflow the context."""
    examples = examples_for(item, strategy, plan.pool, plan.ranked)
    limit = budget(model, plan)
    dropped = 0
    while True:
        prompt = render(item, examples, model.record.mode, plan.system, plan.template)
        used = prompt_tokens(prompt, model.count_tokens) if limit is not None else None
        if used is None or used <= limit or not examples:
            return prompt, {"dropped": dropped, "prompt_tokens": used, **shots(strategy, examples)}
        examples, dropped = examples[:-1], dropped + 1


async def _with_context(model: Model, strategy: Strategy, item: Item, plan: Plan):
    """RAG: the best chunks of the knowledge base, packed into what the context window leaves."""
    from modelatlas.rag.ask import context_prompt, pack
    from modelatlas.rag.search import open_kb
    from modelatlas.strategies.prompting import question_text

    question = question_text(item, plan.template)
    hits = open_kb(strategy.kb).search(question, k=strategy.k)
    limit = budget(model, plan)
    if limit is not None:
        base = prompt_tokens(context_prompt(question, [], model.record.mode, plan.system), model.count_tokens)
        hits, dropped = pack(hits, limit - base, model.count_tokens)
    else:
        dropped = 0
    prompt = context_prompt(question, hits, model.record.mode, plan.system)
    extra = {
        "retrieved": [h.chunk_id for h in hits],
        "contexts": [h.text for h in hits],
        "dropped": dropped,
        "prompt_tokens": prompt_tokens(prompt, model.count_tokens),
    }
    return prompt, extra


async def _choose(model: Model, strategy: Strategy, item: Item, plan: Plan) -> Output:
    """Multiple choice: by log-likelihood of each choice where the model gives it, else by letter."""
    from modelatlas.evals.metrics.choice import letter_prompt

    if not model.backend.facts(model.record).can("loglikelihood"):
        question = item.model_copy(update={"input": letter_prompt(item), "messages": None})
        prompt = render(question, [], model.record.mode, plan.system)
        done = await model.generate(prompt, max_tokens=8, temperature=0.0, stop=stops_for(model.record.mode))
        return Output(
            text=done.text.strip(),
            usage=done.usage,
            latency_s=done.timing.latency_s,
            ttft_s=done.timing.ttft_s,
            cached=done.cached,
            prompt=prompt,
            **shots(strategy, []),  # the letter prompt holds no examples: counted, not hidden
        )
    examples = examples_for(item, strategy, plan.pool, plan.ranked)
    context = render(item, examples, "completion", plan.system, plan.template)
    scores = [await model.loglikelihood(context, " " + choice) for choice in item.choices]
    best = max(range(len(scores)), key=lambda i: scores[i].logprob)
    return Output(
        text=item.choices[best],
        choice_logprobs=[s.logprob for s in scores],
        prompt=context,
        **shots(strategy, examples),
    )


async def score_all(item: Item, output: Output, metrics: dict[str, Metric], ctx: Context) -> dict[str, Score]:
    """Every metric's score; a metric that fails on this item records an error for it alone."""
    scores: dict[str, Score] = {}
    for name, metric in metrics.items():
        if output.error is not None:
            scores[name] = Score(error=f"no output: {output.error}")
            continue
        try:
            scores[name] = await metric.score(item, output, ctx)
        except ModelAtlasError as exc:
            scores[name] = Score(error=exc.message)
        except (ValueError, TypeError, ZeroDivisionError) as exc:
            scores[name] = Score(error=f"{type(exc).__name__}: {exc}")
    return scores
