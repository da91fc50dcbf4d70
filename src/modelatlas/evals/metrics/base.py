"""The metric contract: ``ItemMetric`` and ``PairMetric``, and the classes that implement them.

An :class:`ItemMetric` scores one item's output (``score``); a :class:`PairMetric` compares two
outputs of the same item (``compare``: 1.0 when A is better, 0.0 when B is, 0.5 for a tie). Both
say how the run's scores aggregate (``aggregate``; ``aggregation`` names the rule, by default
the mean of the values that are not errors) and carry their own typed ``options``
(:mod:`modelatlas.evals.metrics.options`), checked when the metric is made:
``get_metric("mrr", k=3)`` or ``MRR(k=3)``.

Metrics are looked up by name; built-ins and plugins both come through the entry-point group
``modelatlas.metrics`` (``name = "module:attr"``, a Metric class or a factory that returns one).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, runtime_checkable

from pydantic import ValidationError

from modelatlas.errors import ConfigError
from modelatlas.evals.metrics.options import MetricOptions, NoOptions, parse_options
from modelatlas.evals.types import Item, Output, Score

if TYPE_CHECKING:
    from modelatlas.backends.model import Model


@dataclass
class Context:
    """What a metric may use besides the item and the output.

    ``options`` is the way options reached metrics before they had their own (issue 12): a metric
    takes the keys its Options declares and ignores the rest. New code makes the metric with its
    options instead (``get_metric("ndcg", k=3)``); the runner passes none here."""

    model: Model | None = None  # the model under test
    judge: Model | None = None  # the LLM judge (judge_* metrics)
    embedder: Model | None = None  # the embedding model (semantic_similarity)
    options: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class ItemMetric(Protocol):
    """Scores one item's output; ``aggregate`` turns a run's scores into one value."""

    name: ClassVar[str]
    higher_is_better: ClassVar[bool]

    async def score(self, item: Item, output: Output, ctx: Context) -> Score: ...

    def aggregate(self, scores: Sequence[Score]) -> float | None: ...


@runtime_checkable
class PairMetric(Protocol):
    """Compares two outputs of one item: 1.0 when A is better, 0.0 when B is, 0.5 for a tie."""

    name: ClassVar[str]
    higher_is_better: ClassVar[bool]

    async def compare(self, item: Item, output_a: Output, output_b: Output, ctx: Context) -> Score: ...

    def aggregate(self, scores: Sequence[Score]) -> float | None: ...


class Metric:
    """The base of the built-in metrics (an ItemMetric; :class:`PairwiseMetric` for pairs)."""

    name: ClassVar[str] = ""
    Options: ClassVar[type[MetricOptions]] = NoOptions
    aggregation: ClassVar[str] = "mean"  # the rule aggregate() applies, for reports and readers
    needs_reference: ClassVar[bool] = True
    binary: ClassVar[bool] = False  # values are 0 or 1 (McNemar applies)
    # The range the values (and so the aggregate) lie in: (low, high), high None when there is no
    # upper bound; None when not known. Charts fix their axis to it. A binary metric is 0..1.
    bounds: ClassVar[tuple[float, float | None] | None] = None
    higher_is_better: ClassVar[bool] = True
    needs_judge: ClassVar[bool] = False
    needs_choices: ClassVar[bool] = False
    # The options in use: the class holds the defaults (so a subclass whose __init__ does not
    # call this one still has them), an instance the ones it was made with.
    options: MetricOptions = NoOptions()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        with contextlib.suppress(ValidationError):  # an option without a default: it must be given
            cls.options = cls.Options()

    def __init__(self, **options: Any) -> None:
        self.options = parse_options(self.name, self.Options, options)

    def with_options(self, options: Mapping[str, Any] | None = None, /, **more: Any) -> Self:
        """A copy of this metric with these options over its own, checked as at construction."""
        given = {**(options or {}), **more}
        if not given:
            return self
        made = copy.copy(self)
        made.options = parse_options(self.name, self.Options, {**dict(self.options), **given})
        return made

    def for_context(self, ctx: Context) -> Self:
        """This metric with the options a caller put on the Context (those it takes)."""
        taken = {k: v for k, v in ctx.options.items() if k in self.Options.model_fields}
        return self.with_options(taken) if taken else self

    def check(self, items: Sequence[Item] | None = None) -> None:
        """Fail before a run on items this metric cannot score; ``None``: no items known yet."""

    def validate(self, options: Mapping[str, Any] | None = None, items: Sequence[Item] | None = None) -> None:
        """The check from before typed options: ``options`` (a shared dict: the keys this metric
        takes are checked, the others ignored), then :meth:`check` on ``items``."""
        self.for_context(Context(options=dict(options or {}))).check(items)

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        raise NotImplementedError

    def aggregate(self, scores: Sequence[Score]) -> float | None:
        values = [s.value for s in scores if s.ok and s.value is not None]
        return sum(values) / len(values) if values else None


class PairwiseMetric(Metric):
    """The base of the metrics that compare two outputs (a PairMetric): ``score`` refuses."""

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        raise ConfigError(
            f"{self.name} compares two outputs of the same item; it cannot score one alone.",
            hint="Call compare(item, output_a, output_b, ctx) instead of score().",
        )

    async def compare(self, item: Item, output_a: Output, output_b: Output, ctx: Context) -> Score:
        raise NotImplementedError


def is_pair_metric(metric: object) -> bool:
    """Whether ``metric`` compares two outputs (a PairMetric) rather than scoring one."""
    return isinstance(metric, PairMetric)
