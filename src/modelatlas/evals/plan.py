"""An evaluation plan: what to run, checked before anything runs, and its cost estimate."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from modelatlas.errors import ConfigError
from modelatlas.evals.datasets import Dataset, Fields, load_dataset
from modelatlas.evals.metrics.base import Metric
from modelatlas.evals.prompting import DEFAULT_EMBEDDER, PromptSetup, Strategy, parse_strategy
from modelatlas.evals.types import Item


@dataclass
class Plan:
    dataset: Dataset
    models: list[str]
    strategies: list[Strategy]
    metrics: dict[str, Metric]
    judge: str | None = None
    embedder: str = DEFAULT_EMBEDDER
    pool: list[Item] = field(default_factory=list)  # few-shot examples
    system: str | None = None
    max_tokens: int = 128
    temperature: float = 0.0
    concurrency: int = 4
    price_per_hour: float | None = None  # compute price for local models
    metric_options: dict = field(default_factory=dict)
    name: str | None = None
    template: object | None = None  # a Jinja2 template for the question
    template_path: str | None = None
    arm_list: list[tuple[str, Strategy]] | None = None  # explicit arms (e.g. `improve`)
    limit: int | None = None  # only the first N items: stored, so that a resume reads the same N
    samples_per_item: int = 1  # answers per item (pass_at_k's n); sample i is generated with seed i
    image_params: dict = field(default_factory=dict)  # image models' ImageParams fields (evals.image_plan)

    @property
    def arms(self) -> list[tuple[str, Strategy]]:
        """Each (model, strategy) to run: the given list, else every model with every strategy."""
        if self.arm_list is not None:
            return self.arm_list
        return [(m, s) for m in self.models for s in self.strategies]

    @cached_property
    def prompt_setup(self) -> PromptSetup:
        """What the strategies share in this run (built at first use, after make_plan filled the
        pool and the template; it keeps the similarity ranking once it is made)."""
        return PromptSetup(
            items=self.dataset.items,
            pool=self.pool,
            system=self.system,
            template=self.template,
            answer_tokens=self.max_tokens,
            embedder=self.embedder,
        )

    @property
    def item_metrics(self) -> dict[str, Metric]:
        return {n: m for n, m in self.metrics.items() if not hasattr(m, "compare")}

    @property
    def pair_metrics(self) -> dict[str, Metric]:
        return {n: m for n, m in self.metrics.items() if hasattr(m, "compare")}

    def params(self) -> dict:
        return {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "system": self.system,
            "template": self.template_path,
            "arms": [[m, s.name] for m, s in self.arm_list] if self.arm_list is not None else None,
            "embedder": self.embedder,
            "concurrency": self.concurrency,
            "price_per_hour": self.price_per_hour,
            "metric_options": self.metric_options,
            "limit": self.limit,
            # only when asked for: a run's stored settings (and their --json shape) stay as they were
            **({"samples_per_item": self.samples_per_item} if self.samples_per_item != 1 else {}),
            **({"image": self.image_params} if self.image_params else {}),
        }

    def sampling_warning(self) -> str | None:
        """Why several samples per item may be worth nothing: at temperature 0 they are the same."""
        if self.samples_per_item > 1 and self.temperature == 0:
            return (
                f"--samples-per-item {self.samples_per_item} at temperature 0: greedy decoding gives the "
                "same answer every time (each sample has its own seed, which greedy decoding ignores), "
                "so pass@k equals pass@1. Add --temperature 0.8 (or 0.2 for pass@1) to sample."
            )
        return None


def given_metric_options(
    pattern: str | None, k: int | None, normalize: str | None = None, clip_model: str | None = None
) -> dict[str, object]:
    """The metric options a caller gave (the CLI's --pattern, --k and --normalize, the facade's
    pattern= and k=), and only those: each metric has its own defaults, and make_plan refuses an
    option no chosen metric takes (before options were typed, the default --k 5 went to every
    metric, and a stray --pattern was silently ignored)."""
    given = (("pattern", pattern), ("k", k), ("normalize", normalize), ("clip_model", clip_model))
    return {key: value for key, value in given if value}


def make_plan(
    dataset_path: str,
    models: list[str],
    *,
    strategies: list[str] | None = None,
    metrics: list[str] | None = None,
    judge: str | None = None,
    limit: int | None = None,
    pool_path: str | None = None,
    fields: Fields | None = None,
    arms: list[tuple[str, str]] | None = None,
    **settings,
) -> Plan:
    """Load and check everything a run needs; every problem is raised before the run starts."""
    from modelatlas.evals.metrics.registry import make_metrics

    if arms:
        models = list(dict.fromkeys(m for m, _ in arms))
        strategies = list(dict.fromkeys(s for _, s in arms))
    if not models:
        raise ConfigError("No model to evaluate.", hint="Add --model ID (see `modelatlas models list`).")
    dataset = load_dataset(dataset_path, fields, limit=limit)
    chosen = metrics or default_metrics(dataset)
    parsed = {s: parse_strategy(s) for s in dict.fromkeys(strategies or ["zero-shot"])}
    plan = Plan(
        dataset=dataset,
        models=list(dict.fromkeys(models)),
        strategies=list(parsed.values()),
        # each metric gets the options it takes; one that no chosen metric takes is refused here
        metrics=make_metrics(chosen, settings.get("metric_options")),
        judge=judge,
        limit=limit,
        **settings,
    )
    if arms:
        plan.arm_list = [(m, parsed[s]) for m, s in arms]  # the same objects as plan.strategies
    plan.pool = _pool(dataset, pool_path) if any(s.shots for s in plan.strategies) else []
    if plan.template_path:
        from modelatlas.evals.prompting import load_template

        plan.template = load_template(plan.template_path)
    check(plan)
    return plan


def default_metrics(dataset: Dataset) -> list[str]:
    if dataset.has_choices:
        return ["mc_accuracy"]
    if dataset.has_references:
        return ["exact_match", "f1"]
    raise ConfigError(
        f"{dataset.path} has no references, so no default metric applies.",
        hint="Pick one that needs none, e.g. --metric judge_score --judge MODEL.",
    )


def check(plan: Plan) -> None:
    """Reject a plan that cannot work, naming the metric and what it lacks."""
    n = plan.samples_per_item
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(
            f"samples_per_item must be a whole number of at least 1, not {n!r}.",
            hint="Give --samples-per-item N with N >= 1 (1 answers each item once).",
        )
    from modelatlas.evals.image_plan import check_images_out

    check_images_out(plan)  # image models alone, with image metrics and a judge that sees
    for name, metric in plan.metrics.items():
        if metric.needs_reference and not plan.dataset.has_references:
            missing = next(i for i in plan.dataset.items if not i.reference)
            raise ConfigError(
                f"The metric {name} needs a reference, but {plan.dataset.path}:{missing.line} has none.",
                hint="Add a 'reference' field to every row, or pick another metric.",
            )
        if metric.needs_choices and not plan.dataset.has_choices:
            raise ConfigError(f"The metric {name} needs 'choices' and 'answer' on every row.")
        if metric.needs_judge and not plan.judge:
            raise ConfigError(f"The metric {name} needs a judge model.", hint="Add --judge MODEL.")
        metric.check(plan.dataset.items)
    if plan.pair_metrics and len(plan.arms) < 2:
        raise ConfigError("judge_pairwise compares two arms; give two models or two strategies.")
    from modelatlas.evals.speech_plan import check_speech

    check_speech(plan)  # no strategy for a speech model; audio only for models that take it
    from modelatlas.evals.image_rows import check_images

    check_images(plan)  # pictures only for models that take them, all refused ones named
    for strategy in plan.strategies:
        strategy.check(plan.dataset.items, plan.pool)  # e.g. an unknown knowledge base, an empty pool


def _pool(dataset: Dataset, pool_path: str | None) -> list[Item]:
    """Few-shot examples: the given pool file, else a train.jsonl beside the dataset, else the dataset."""
    if pool_path:
        return load_dataset(pool_path).items
    beside = Path(dataset.path).with_name("train.jsonl")
    on_disk = Path(dataset.path).exists()  # a built-in (humaneval) has no folder to look beside
    if on_disk and beside.exists() and beside.resolve() != Path(dataset.path).resolve():
        return load_dataset(beside).items
    return [i for i in dataset.items if i.reference]
