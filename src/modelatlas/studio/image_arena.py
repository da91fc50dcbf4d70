"""The image arena: two anonymous image generators draw the same prompt, the user votes, the names
are revealed.

As in the text arena (studio/arena.py), a battle's models stay on the server until the vote: the
page sees only "A" and "B" and their pictures, never a name, latency or cost before it votes.
Votes are stored with ``kind="image"`` and feed a Bradley-Terry leaderboard of image battles
only: a rating from judging pictures and one from judging answers are not on one scale.
"""

from __future__ import annotations

import json
import random
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from modelatlas.errors import ConfigError, ModelAtlasError
from modelatlas.studio.arena import (
    VoteRequest,
    _has_its_key,
    finished_battle,
    keep_battle,
    leaderboard,
    vote_reply,
)
from modelatlas.studio.images import ImageRequest, draw_events, image_model_ids, image_params
from modelatlas.studio.playground import ndjson, problem, read_json
from modelatlas.studio.web import render

KIND = "image"
router = APIRouter()


@dataclass
class ImageBattle:
    prompt: str
    models: tuple[str, str]
    results: list[dict] = field(default_factory=lambda: [{}, {}])  # each side's last event
    finished: bool = False


_battles: OrderedDict[str, ImageBattle] = OrderedDict()


class ImageBattleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = ""
    negative_prompt: str | None = Field(None, max_length=2000)
    size: str | None = None
    steps: int | None = Field(None, ge=1, le=150)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)  # None: one drawn for the battle
    model_a: str | None = None  # None or "": picked at random
    model_b: str | None = None


def pick_image_pair(
    model_a: str | None, model_b: str | None, rng: random.Random | None = None
) -> tuple[str, str]:
    """The two generators of a battle: the ones chosen, the rest drawn from those that can run here."""
    rng = rng or random.Random()
    runnable = image_model_ids()
    chosen = [m for m in (model_a, model_b) if m]
    for model_id in chosen:
        if model_id not in runnable:
            raise ConfigError(
                f"{model_id} is not an image generator that can run here.",
                hint="Pick one from the list, or leave it at random.",
            )
    others = [m for m in runnable if m not in chosen and _has_its_key(m)]
    needed = 2 - len(chosen)
    if len(others) < needed:
        raise ConfigError(
            "The image arena needs two different image generators, and fewer can run here.",
            hint="Add one with `modelatlas models add` (a diffusers folder), or set a hosted model's key.",
        )
    pair = chosen + rng.sample(others, needed)
    if pair[0] == pair[1]:
        raise ConfigError("Pick two different models for a battle.")
    rng.shuffle(pair)
    return pair[0], pair[1]


def start_battle(req: ImageBattleRequest) -> AsyncIterator[dict]:
    """Draw the pair and return the battle's events (names withheld); both draw with one seed."""
    if not req.prompt.strip():
        raise ConfigError("Write a prompt first.")
    seed = req.seed if req.seed is not None else secrets.randbelow(2**31)
    settings = {"size": req.size, "steps": req.steps, "seed": seed, "negative_prompt": req.negative_prompt}
    params = image_params(ImageRequest(prompt=req.prompt, n=1, **settings))
    pair = pick_image_pair(req.model_a, req.model_b)
    battle = ImageBattle(prompt=req.prompt, models=pair)
    battle_id = keep_battle(_battles, battle)
    return _battle_events(battle_id, battle, params)


async def _battle_events(battle_id: str, battle: ImageBattle, params) -> AsyncIterator[dict]:
    def keep(event: dict) -> None:
        battle.results[event["index"]] = event

    yield {"type": "start", "battle": battle_id}
    async for event in draw_events(list(battle.models), battle.prompt, params, keep):
        if event["type"] == "done":
            battle.finished = True
        yield event


def summary(event: dict) -> str:
    """What is stored of one side's pictures: their sizes, seeds, latency and cost, not the bytes."""
    if event.get("type") == "error":
        return json.dumps({"error": event.get("message", "")})
    pictures = [{k: v for k, v in image.items() if k != "url"} for image in event.get("images", [])]
    kept = {"images": pictures, "latency_s": event.get("latency_s"), "cost_usd": event.get("cost_usd")}
    return json.dumps(kept)


def vote(req: VoteRequest) -> dict[str, Any]:
    """Store the verdict of a finished image battle; returns the names and the image leaderboard."""
    from modelatlas.store.votes import add_vote

    battle = finished_battle(_battles, req.battle, "pictures")
    if any(result.get("type") != "images" for result in battle.results):
        raise ConfigError("A model failed in this battle, so it cannot be judged: start another battle.")
    model_a, model_b = battle.models
    answers = {"answer_a": summary(battle.results[0]), "answer_b": summary(battle.results[1])}
    add_vote(battle.prompt, model_a, model_b, req.winner, kind=KIND, **answers)
    del _battles[req.battle]
    stats = [_stats(battle.results[0]), _stats(battle.results[1])]
    return {
        "model_a": model_a,
        "model_b": model_b,
        "winner": req.winner,
        "stats": stats,
        "leaderboard": leaderboard(KIND),
    }


def _stats(event: dict) -> dict[str, Any]:
    return {"latency_s": event.get("latency_s"), "cost_usd": event.get("cost_usd")}


@router.post("/api/arena/image/battle")
async def image_battle(request: Request):
    try:
        events = start_battle(await read_json(request, ImageBattleRequest))
    except ModelAtlasError as exc:
        return problem(exc, 404 if isinstance(exc, LookupError) else 400)
    return ndjson(events)


@router.post("/api/arena/image/vote")
async def image_vote(request: Request):
    return await vote_reply(request, vote)


@router.get("/api/arena/image/leaderboard")
def image_leaderboard():
    return {"leaderboard": leaderboard(KIND)}


def image_arena_page(request: Request):
    board = leaderboard(KIND)
    return render(request, "arena_image.html", mode="image", choices=image_model_ids(), leaderboard=board)
