"""Answer one item with one arm (a model and a strategy), then score it with every metric."""

from __future__ import annotations

from modelatlas.backends.model import Model
from modelatlas.errors import ModelAtlasError
from modelatlas.evals.metrics.base import Context, Metric
from modelatlas.evals.plan import Plan
from modelatlas.evals.prompting import Prepared, Strategy, counted, render, stops_for
from modelatlas.evals.speech_plan import transcribes
from modelatlas.evals.structured_rows import call_settings
from modelatlas.evals.types import Item, Output, Score
from modelatlas.types import Completion


async def answer(model: Model, strategy: Strategy, item: Item, plan: Plan) -> Output:
    """The model's output for ``item``; a failure becomes ``Output.error``, never an exception."""
    prepared: Prepared | None = None
    try:
        if transcribes(model.backend.facts(model.record)):
            return await _transcribe(model, item)
        if item.choices and item.answer is not None and "mc_accuracy" in plan.metrics:
            return await _choose(model, strategy, item, plan)
        prepared = await strategy.prepare(item, model, plan.prompt_setup)
        done = [await _sample(model, prepared, item, plan, seed) for seed in range(plan.samples_per_item)]
    except ModelAtlasError as exc:
        return prepared.output(error=exc.message) if prepared else Output(error=exc.message)
    return _output(done[0], prepared) if len(done) == 1 else _samples(done, prepared)


async def _sample(model: Model, prepared: Prepared, item: Item, plan: Plan, seed: int) -> Completion:
    """One answer. Sample i has seed i: a sampled run is reproducible, and the response cache
    (keyed by the seed too) keeps the samples apart; sample 0 is the single-sample answer. The
    item's tools, tool choice and response format go with it (a model that cannot honour them
    refuses, and the item's output is that error)."""
    return await model.generate(
        prepared.prompt,
        max_tokens=plan.max_tokens,
        temperature=plan.temperature,
        stop=prepared.stop,
        seed=seed,
        **call_settings(item),
    )


def _output(done: Completion, prepared: Prepared) -> Output:
    return prepared.output(
        text=done.text.strip(),
        usage=done.usage,
        latency_s=done.timing.latency_s,
        ttft_s=done.timing.ttft_s,
        cached=done.cached,
        tool_calls=list(done.tool_calls) or None,
    )


def _samples(done: list[Completion], prepared: Prepared) -> Output:
    """Several answers to one item: all kept (the first is ``text``); usage, cost and latency
    are their sums (the time and money the item took), time to first token the first's."""
    usage = done[0].usage
    for more in done[1:]:
        usage = usage + more.usage
    return prepared.output(
        text=done[0].text.strip(),
        samples=[d.text.strip() for d in done],
        usage=usage,
        latency_s=sum(d.timing.latency_s for d in done),
        ttft_s=done[0].timing.ttft_s,
        cached=all(d.cached for d in done),
        tool_calls=list(done[0].tool_calls) or None,
    )


async def _choose(model: Model, strategy: Strategy, item: Item, plan: Plan) -> Output:
    """Multiple choice: by log-likelihood of each choice where the model gives it, else by letter."""
    from modelatlas.evals.metrics.choice import letter_prompt

    if not model.backend.facts(model.record).can("loglikelihood"):
        question = item.model_copy(update={"input": letter_prompt(item), "messages": None})
        mode = model.record.mode
        # The letter prompt holds no examples: counted as missing, not hidden.
        prompt = render(question, [], mode, plan.system)
        letters = Prepared(prompt, stops_for(mode), None, 0, *counted(strategy.shots, []))
        done = await model.generate(letters.prompt, max_tokens=8, temperature=0.0, stop=letters.stop)
        return _output(done, letters)
    # The strategy's prompt as a base model's transcript, with every example (no guard, no retrieval).
    context = strategy.preview(item, "completion", plan.prompt_setup)
    scores = [await model.loglikelihood(context.prompt, " " + choice) for choice in item.choices]
    best = max(range(len(scores)), key=lambda i: scores[i].logprob)
    return context.output(text=item.choices[best], choice_logprobs=[s.logprob for s in scores])


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


async def _transcribe(model: Model, item: Item) -> Output:
    """A speech model's answer: the transcript of the item's audio (its timing and audio seconds;
    a ``language`` field such as "en" on the item is passed on, else the model detects it)."""
    if item.audio is None:
        return Output(
            error=f"{model.id} transcribes speech, and item {item.id!r} has no audio: "
            "give each row an 'audio' field naming its sound file."
        )
    language = item.metadata.get("language")
    known = isinstance(language, str) and language.isalpha() and 2 <= len(language) <= 3
    done = await model.transcribe(item.audio, language=language.lower() if known else None)
    timing = done.timing
    return Output(text=done.text.strip(), usage=done.usage, latency_s=timing.latency_s, cached=done.cached)
