"""The arena's Bradley-Terry leaderboard: known cases, ties, the prior, the bootstrap intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas.evals.bradley_terry import CENTRE, WINNERS, leaderboard


def by_model(board):
    return {r.model: r for r in board}


def test_a_model_that_always_wins_ranks_first_with_a_finite_rating():
    board = leaderboard([("A", "B", "a")] * 5 + [("B", "A", "b")] * 5)
    assert [r.model for r in board] == ["A", "B"]
    a, b = board
    assert math.isfinite(a.rating) and a.rating > b.rating
    assert (a.games, a.wins, a.losses, a.ties) == (10, 10, 0, 0)
    assert (b.games, b.wins, b.losses, b.ties) == (10, 0, 10, 0)


def test_symmetric_results_give_equal_ratings():
    votes = [(x, y, w) for x, y in (("A", "B"), ("B", "C"), ("C", "A")) for w in ("a", "b")]
    board = leaderboard(votes)
    assert [r.rating for r in board] == pytest.approx([CENTRE] * 3)


def test_the_maximum_likelihood_case_with_a_negligible_prior():
    # Two models: A wins 3 of 4, so the strengths' ratio is 3 and A leads by 400 log10(3) Elo points.
    board = by_model(leaderboard([("A", "B", "a")] * 3 + [("A", "B", "b")], prior=1e-9))
    assert board["A"].rating - board["B"].rating == pytest.approx(400 * math.log10(3), abs=1e-3)
    assert board["A"].rating + board["B"].rating == pytest.approx(2 * CENTRE)


def test_a_transitive_chain_is_ordered():
    votes = [("A", "B", "a")] * 4 + [("B", "C", "a")] * 4 + [("A", "C", "a")] * 2 + [("C", "B", "tie")]
    assert [r.model for r in leaderboard(votes)] == ["A", "B", "C"]


def test_a_tie_is_half_a_win_each_way_and_both_bad_counts_as_a_tie():
    halves = leaderboard([("A", "B", "a"), ("A", "B", "b")] * 3, prior=1e-9)
    ties = leaderboard([("A", "B", "tie")] * 6, prior=1e-9)
    bad = leaderboard([("A", "B", "both_bad")] * 6, prior=1e-9)
    assert [r.rating for r in ties] == pytest.approx([r.rating for r in halves])
    assert [r.rating for r in bad] == pytest.approx([r.rating for r in ties])
    assert by_model(bad)["A"].ties == 6
    mixed = by_model(leaderboard([("A", "B", "a"), ("A", "B", "tie"), ("A", "B", "tie")], prior=1e-9))
    # A scored 2 of 3: the strengths' ratio is 2.
    assert mixed["A"].rating - mixed["B"].rating == pytest.approx(400 * math.log10(2), abs=1e-3)


def test_intervals_contain_the_estimate_and_are_seeded():
    rng = np.random.default_rng(7)
    models = ["A", "B", "C", "D"]
    votes = [
        (models[i], models[j], str(rng.choice(["a", "b", "tie", "both_bad"], p=[0.5, 0.3, 0.1, 0.1])))
        for i, j in (rng.choice(4, size=2, replace=False) for _ in range(60))
    ]
    board = leaderboard(votes, seed=3)
    assert board == leaderboard(votes, seed=3)
    for r in board:
        assert r.ci_low <= r.rating <= r.ci_high and r.ci_high > r.ci_low
    assert sum(r.games for r in board) == 2 * len(votes)


def test_more_votes_narrow_the_interval():
    few = by_model(leaderboard([("A", "B", "a"), ("A", "B", "a"), ("A", "B", "b")] * 2))
    many = by_model(leaderboard([("A", "B", "a"), ("A", "B", "a"), ("A", "B", "b")] * 40))
    assert many["A"].ci_high - many["A"].ci_low < few["A"].ci_high - few["A"].ci_low


def test_edge_cases():
    assert leaderboard([]) == []
    assert leaderboard([("A", "A", "a")]) == []  # a model against itself tells nothing
    with pytest.raises(ValueError, match="winner is one of"):
        leaderboard([("A", "B", "draw")])


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("ABC"), st.sampled_from("ABC"), st.sampled_from(WINNERS)),
        min_size=1,
        max_size=30,
    )
)
def test_any_votes_give_finite_centred_ratings_inside_their_intervals(votes):
    board = leaderboard(votes, rounds=20)
    for r in board:
        assert math.isfinite(r.rating) and r.ci_low <= r.rating <= r.ci_high
    if board:
        assert np.mean([r.rating for r in board]) == pytest.approx(CENTRE)
