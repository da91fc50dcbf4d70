"""One model, many offers: the same underlying model listed by its maker and by resellers, grouped.

models.dev names the model a provider resells in ``base_model`` (groq's ``groq/openai/gpt-oss-120b``
has ``openai/gpt-oss-120b``), and a maker's own listing (``openai/gpt-4o``) is the model itself.
About a quarter of the hosted records have neither; such a record joins a model only when its id's
last segment is exactly that model's name, exactly one maker has a model of that name, and, when
the id names a maker (``deepinfra/openai/gpt-oss-120b``), it is that maker. Anything else stays a
model of its own: a wrong group would hide a different model, a missed one only costs a row.
Models on this machine are never grouped (a fine-tune's ``base_model`` is its parent, not itself).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from modelatlas.catalog.records import ModelRecord
from modelatlas.catalog.search import MAKERS, price_in, price_out


@dataclass(frozen=True)
class Group:
    """The offers of one model: ``head`` is the one to show first, ``others`` the rest."""

    head: ModelRecord
    others: tuple[ModelRecord, ...]

    @property
    def offers(self) -> int:
        return 1 + len(self.others)


def model_keys(records: Iterable[ModelRecord]) -> dict[str, str]:
    """Each record's id -> the key (a lowercase ``maker/model`` id) of the model it offers."""
    records = list(records)
    hosted = [r for r in records if r.hosting == "hosted"]
    canonical = {r.base_model.lower() for r in hosted if r.base_model}
    canonical |= {r.id.lower() for r in hosted if r.provider in MAKERS}
    by_name: dict[str, set[str]] = {}
    for model in canonical:
        by_name.setdefault(model.split("/", 1)[1], set()).add(model)
    makers = {model.split("/", 1)[0] for model in canonical}
    keys = {r.id: r.id.lower() for r in records}
    for r in hosted:
        keys[r.id] = _key(r, canonical, by_name, makers)
    return keys


def _key(r: ModelRecord, canonical: set[str], by_name: dict[str, set[str]], makers: set[str]) -> str:
    own = r.id.lower()
    if r.base_model:
        return r.base_model.lower()
    if own in canonical:
        return own
    segments = own.split("/")
    named = [s for s in segments[1:-1] if s in makers]
    found = by_name.get(segments[-1], set())
    if named:
        found = {model for model in found if model.split("/", 1)[0] == named[-1]}
    return next(iter(found)) if len(found) == 1 else own


def group(records: list[ModelRecord], keys: dict[str, str]) -> list[Group]:
    """``records`` (already sorted) as one Group per model. Each group's head is its cheapest
    offer that runs here, else its cheapest offer; the groups keep their heads' order in
    ``records``, so a sorted column still reads in order."""
    members: dict[str, list[ModelRecord]] = {}
    for r in records:
        members.setdefault(keys.get(r.id, r.id.lower()), []).append(r)
    position = {r.id: i for i, r in enumerate(records)}
    groups = []
    for offers in members.values():
        ranked = sorted(offers, key=_offer_rank)
        groups.append(Group(head=ranked[0], others=tuple(ranked[1:])))
    return sorted(groups, key=lambda g: position[g.head.id])


def _offer_rank(r: ModelRecord) -> tuple[bool, bool, float, float, bool, str]:
    """Runnable before not; then the cheapest input price (unknown last), output price, the
    maker's own listing, the id."""
    cost_in, cost_out = price_in(r), price_out(r)
    return (
        not r.runnable,
        cost_in is None,
        cost_in or 0.0,
        cost_out or 0.0,
        r.provider not in MAKERS,
        r.id,
    )
