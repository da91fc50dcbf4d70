"""A Bradley-Terry leaderboard from pairwise votes, with bootstrap confidence intervals.

Each vote is ``(model_a, model_b, winner)`` with winner ``"a"``, ``"b"``, ``"tie"`` or
``"both_bad"``. A tie counts as half a win each way. "Both bad" counts as a tie too, as in
Chatbot Arena: the voter saw no difference between the two, which is what a tie says (leaving
it out would drop what the vote tells about two equally weak models).

The fit maximises the likelihood of a logistic model of the log-strengths (Newton's method)
with a tiny normal prior on them (precision ``prior``, 0.1 by default: a standard deviation of
about 550 Elo points), which makes no difference once models have a few votes but keeps the
fit finite when a model won, or lost, every game. Log-strengths are reported on the Elo scale
(400 log10 of the strength), centred so that the mean rating is 1000.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

WINNERS = ("a", "b", "tie", "both_bad")
SCALE = 400 / np.log(10)
CENTRE = 1000.0
PRIOR = 0.1


@dataclass(frozen=True)
class Rating:
    """One model on the leaderboard: its rating, its 95% interval and its record."""

    model: str
    rating: float
    ci_low: float
    ci_high: float
    games: int
    wins: int
    losses: int
    ties: int


Vote = tuple[str, str, str]


def leaderboard(
    votes: Sequence[Vote], *, rounds: int = 200, seed: int = 0, prior: float = PRIOR
) -> list[Rating]:
    """Models by rating, best first, with percentile-bootstrap 95% intervals over the votes."""
    votes = [v for v in votes if v[0] != v[1]]
    models = sorted({m for a, b, _ in votes for m in (a, b)})
    if not models:
        return []
    index = {m: i for i, m in enumerate(models)}
    a = np.array([index[v[0]] for v in votes])
    b = np.array([index[v[1]] for v in votes])
    score_a = np.array([_score_a(v[2]) for v in votes])
    point = fit(a, b, score_a, len(models), prior)
    low, high = _bootstrap(a, b, score_a, len(models), prior, rounds, seed)
    # A percentile interval can miss the estimate on very few votes; widen it to contain it.
    low, high = np.minimum(low, point), np.maximum(high, point)
    ratings = [
        Rating(m, float(point[i]), float(low[i]), float(high[i]), *_record(i, a, b, score_a))
        for i, m in enumerate(models)
    ]
    return sorted(ratings, key=lambda r: (-r.rating, r.model))


def fit(a: np.ndarray, b: np.ndarray, score_a: np.ndarray, n_models: int, prior: float = PRIOR) -> np.ndarray:
    """Elo-scale ratings of ``n_models`` from games ``a[k]`` vs ``b[k]`` (``score_a``: 1, ½ or 0)."""
    wins = np.zeros((n_models, n_models))
    np.add.at(wins, (a, b), score_a)
    np.add.at(wins, (b, a), 1.0 - score_a)
    theta = _newton(wins, wins + wins.T, prior)
    return CENTRE + SCALE * (theta - theta.mean())


def _newton(wins: np.ndarray, games: np.ndarray, prior: float, steps: int = 100) -> np.ndarray:
    """The log-strengths that maximise the penalised likelihood (Newton, halving when it overshoots)."""
    theta = np.zeros(len(wins))
    value = _objective(theta, wins, prior)
    for _ in range(steps):
        p = _expit(theta[:, None] - theta[None, :])
        grad = (wins - games * p).sum(axis=1) - prior * theta
        curve = games * p * (1 - p)
        hessian = curve - np.diag(curve.sum(axis=1) + prior)
        step = np.linalg.solve(hessian, grad)
        for _ in range(30):
            candidate = theta - step
            new_value = _objective(candidate, wins, prior)
            if new_value >= value - 1e-12:
                break
            step = step / 2
        theta, value = candidate, new_value
        if np.max(np.abs(step)) < 1e-9:
            break
    return theta


def _objective(theta: np.ndarray, wins: np.ndarray, prior: float) -> float:
    log_p = -np.logaddexp(0.0, -(theta[:, None] - theta[None, :]))  # log expit, stably
    return float((wins * log_p).sum() - prior / 2 * (theta**2).sum())


def _expit(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


def _bootstrap(a, b, score_a, n_models, prior, rounds, seed) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = len(a)
    samples = np.empty((rounds, n_models))
    for r in range(rounds):
        pick = rng.integers(0, n, n)
        samples[r] = fit(a[pick], b[pick], score_a[pick], n_models, prior)
    return np.percentile(samples, 2.5, axis=0), np.percentile(samples, 97.5, axis=0)


def _score_a(winner: str) -> float:
    if winner not in WINNERS:
        raise ValueError(f"A vote's winner is one of {', '.join(WINNERS)}, not {winner!r}.")
    return {"a": 1.0, "b": 0.0}.get(winner, 0.5)


def _record(i: int, a: np.ndarray, b: np.ndarray, score_a: np.ndarray) -> tuple[int, int, int, int]:
    mine = np.where(a == i, score_a, np.where(b == i, 1.0 - score_a, np.nan))
    mine = mine[~np.isnan(mine)]
    return len(mine), int((mine == 1.0).sum()), int((mine == 0.0).sum()), int((mine == 0.5).sum())
