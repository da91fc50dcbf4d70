"""One model, many offers: the same underlying model listed by its maker and by resellers, grouped.

The snapshot has no model id shared by every provider, so the key of the model a record offers
is worked out from what it does say, most trusted first:

1. ``base_model``, where models.dev names the model a provider resells (groq's
   ``groq/openai/gpt-oss-120b`` has ``openai/gpt-oss-120b``);
2. a maker named inside the id (``deepinfra/openai/gpt-oss-120b`` is ``openai/gpt-oss-120b``);
3. a maker's own listing, ``maker/model``, is that model;
4. otherwise the id's last segment: the one model of 1-3 with exactly that name, else, for a
   specific name (with a digit, five characters or more: ``deepseek-v3.2``, not ``auto``), every
   record of that name.

Anything else stays a model of its own: a wrong group would hide a different model, a missed one
only costs a row. Models on this machine are never grouped (a fine-tune's ``base_model`` is its
parent, not itself).
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


def model_keys(records: Iterable[ModelRecord]) -> dict[str, str]:
    """Each record's id -> the key (lowercase, ``maker/model`` where known) of the model it offers."""
    records = list(records)
    keys = {r.id: r.id.lower() for r in records}
    hosted = [r for r in records if r.hosting == "hosted"]
    makers = set(MAKERS) | {r.base_model.split("/", 1)[0].lower() for r in hosted if r.base_model}
    named = {r.id: key for r in hosted if (key := _named_key(r, makers))}
    by_name: dict[str, set[str]] = {}
    for key in set(named.values()):
        by_name.setdefault(key.rsplit("/", 1)[-1], set()).add(key)
    for r in hosted:
        keys[r.id] = named.get(r.id) or _name_key(r.id.lower(), by_name)
    return keys


def _named_key(r: ModelRecord, makers: set[str]) -> str | None:
    """The model's key when the record names its maker (rules 1-3), else None."""
    if r.base_model:
        return r.base_model.lower()
    segments = r.id.lower().split("/")
    inside = [s for s in segments[1:-1] if s in makers]
    if inside:
        return f"{inside[-1]}/{segments[-1]}"
    return "/".join(segments) if len(segments) == 2 and r.provider in MAKERS else None


def _name_key(own: str, by_name: dict[str, set[str]]) -> str:
    """Rule 4: the key of the one named model with this id's last segment, or the name itself."""
    name = own.rsplit("/", 1)[-1]
    found = by_name.get(name, set())
    if len(found) == 1:
        return next(iter(found))
    specific = len(name) >= 5 and any(c.isdigit() for c in name)
    return f"*/{name}" if specific and not found else own


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
