"""The arena: two anonymous models answer the same prompt, the user votes, the names are revealed.

A battle's models and answers stay on the server until the vote (the page sees only "A" and
"B"); the vote is stored with both answers, and the Bradley-Terry leaderboard is refitted.
"""

from __future__ import annotations

import random
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from modelatlas.errors import ConfigError, ModelAtlasError
from modelatlas.studio import vision
from modelatlas.studio.playground import (
    PromptRequest,
    ndjson,
    open_models,
    problem,
    read_json,
    stream_events,
    studio_record,
    text_model_ids,
)
from modelatlas.studio.web import render

KEEP_BATTLES = 200
router = APIRouter()


@dataclass
class Battle:
    prompt: str
    models: tuple[str, str]
    answers: list[str] = field(default_factory=lambda: ["", ""])
    finished: bool = False


_battles: OrderedDict[str, Battle] = OrderedDict()


class BattleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = ""
    system: str | None = None
    model_a: str | None = None  # None or "": picked at random
    model_b: str | None = None
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(256, ge=1, le=8192)
    images: list[str] = Field(default_factory=list)  # data: URLs (studio/vision.py checks them)


class VoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    battle: str
    winner: Literal["a", "b", "tie", "both_bad"]


def keep_battle(battles: OrderedDict[str, Any], battle: Any) -> str:
    """Store a new battle under a fresh id and return the id; only the newest KEEP_BATTLES are
    kept, so battles never voted on do not pile up. The text and image arenas keep theirs alike."""
    battle_id = secrets.token_urlsafe(12)
    battles[battle_id] = battle
    while len(battles) > KEEP_BATTLES:
        battles.popitem(last=False)
    return battle_id


def finished_battle(battles: OrderedDict[str, Any], battle_id: str, what: str) -> Any:
    """The battle a vote is for: LookupError if it is not known, ConfigError while its two
    ``what`` ("answers", "pictures") are not all in (a vote judges both sides as shown)."""
    battle = battles.get(battle_id)
    if battle is None:
        raise LookupError("This battle is not known (it was voted on, or the studio restarted).")
    if not battle.finished:
        raise ConfigError(f"Wait for both {what} before voting.")
    return battle


async def vote_reply(request: Request, vote: Callable[[VoteRequest], dict[str, Any]]):
    """What a vote route answers (text or image arena): ``vote``'s result, or the error with 400
    for a request that is not a vote, 404 for a battle not known, 409 for one not ready to judge."""
    try:
        req = await read_json(request, VoteRequest)
    except ModelAtlasError as exc:
        return problem(exc)
    try:
        return vote(req)
    except LookupError as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
    except ModelAtlasError as exc:
        return problem(exc, 409)


def _has_its_key(model_id: str) -> bool:
    """A hosted model is drawn at random only when what its backend declares a call needs (its
    API key; for Azure, an endpoint) is in the environment."""
    from modelatlas.backends.declared import facts

    return not facts(studio_record(model_id)).missing_env()


def pick_pair(
    model_a: str | None, model_b: str | None, rng: random.Random | None = None, images: bool = False
) -> tuple[str, str]:
    """The two models of a battle: the ones chosen, the rest drawn from the runnable text models
    (from those that take images, when the prompt carries some)."""
    rng = rng or random.Random()
    pool = [m for m in text_model_ids() if _has_its_key(m)]
    chosen = [m for m in (model_a, model_b) if m]
    if images:
        vision.refuse_text_only(chosen)
        pool = vision.image_model_ids(pool)
    others = [m for m in pool if m not in chosen]
    needed = 2 - len(chosen)
    if len(others) < needed:
        raise ConfigError(
            f"The arena needs two different {'models that take images' if images else 'text models'}, "
            "and fewer can run here.",
            hint="Add one with `modelatlas models add`, or pick two models yourself.",
        )
    pair = chosen + rng.sample(others, needed)
    if pair[0] == pair[1]:
        raise ConfigError("Pick two different models for a battle.")
    rng.shuffle(pair)
    return pair[0], pair[1]


async def start_battle(req: BattleRequest) -> AsyncIterator[dict]:
    """Draw the pair, check both models, and return the battle's events (names withheld)."""
    if not req.prompt.strip():
        raise ConfigError("Write a prompt first.")
    images = vision.decode_images(req.images)
    pair = pick_pair(req.model_a, req.model_b, images=bool(images))
    models = await open_models(list(pair), req.prompt, req.system)
    battle = Battle(prompt=req.prompt, models=pair)
    battle_id = keep_battle(_battles, battle)
    return _battle_events(battle_id, battle, models, req, images)


async def _battle_events(
    battle_id: str, battle: Battle, models, req: BattleRequest, images
) -> AsyncIterator[dict]:
    prompt = PromptRequest(
        models=list(battle.models),
        prompt=req.prompt,
        system=req.system,
        temperature=req.temperature,
        max_tokens=req.max_tokens,
    )

    def keep(index: int, text: str) -> None:
        battle.answers[index] += text

    yield {"type": "start", "battle": battle_id}
    async for event in stream_events(models, prompt, keep, images=images):
        if event["type"] == "done":
            battle.finished = True
        yield event


def vote(req: VoteRequest) -> dict[str, Any]:
    """Store the verdict of a finished battle; returns the names and the new leaderboard."""
    from modelatlas.store.votes import add_vote

    battle = finished_battle(_battles, req.battle, "answers")
    model_a, model_b = battle.models
    add_vote(
        battle.prompt, model_a, model_b, req.winner, answer_a=battle.answers[0], answer_b=battle.answers[1]
    )
    del _battles[req.battle]
    return {"model_a": model_a, "model_b": model_b, "winner": req.winner, "leaderboard": leaderboard()}


def leaderboard(kind: str = "text") -> list[dict[str, Any]]:
    """The Bradley-Terry leaderboard of the stored votes of one kind ("text" or "image"), best first.

    Text and image battles are fitted apart: a rating only compares models judged on the same task."""
    from modelatlas.evals.bradley_terry import leaderboard as fit_leaderboard
    from modelatlas.store.votes import list_votes

    votes = [(v.model_a, v.model_b, v.winner) for v in list_votes(kind=kind)]
    return [{"rank": rank, **vars(rating)} for rank, rating in enumerate(fit_leaderboard(votes), start=1)]


@router.post("/api/arena/battle")
async def arena_battle(request: Request):
    try:
        events = await start_battle(await read_json(request, BattleRequest))
    except ModelAtlasError as exc:
        return problem(exc, vision.request_status(exc))
    return ndjson(events)


@router.post("/api/arena/vote")
async def arena_vote(request: Request):
    return await vote_reply(request, vote)


@router.get("/api/arena/leaderboard")
def arena_leaderboard():
    return {"leaderboard": leaderboard()}


@router.get("/arena")
def arena_page(request: Request, mode: str = ""):
    if mode == "image":
        from modelatlas.studio.image_arena import image_arena_page

        return image_arena_page(request)
    choices = text_model_ids()
    facts = vision.page_facts(choices)
    return render(request, "arena.html", mode="text", choices=choices, leaderboard=leaderboard(), **facts)
