"""One money and interval format everywhere (modelatlas.formats), and the places that use it."""

from __future__ import annotations

import pytest

from modelatlas.formats import interval, usd


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (0, "$0"),
        (0.0, "$0"),
        (1234.5, "$1,234.50"),
        (1, "$1.00"),
        (0.5, "$0.50"),
        (0.42, "$0.42"),
        (0.042, "$0.042"),
        (0.0999, "$0.10"),
        (0.0000083, "$0.0000083"),
        (0.00001234, "$0.000012"),
        (-0.25, "-$0.25"),
        (float("nan"), "-"),
    ],
)
def test_money_is_written_one_way(value, text):
    assert usd(value) == text


def test_a_small_cost_is_never_shown_as_zero():
    for value in (1e-9, 3.3e-7, 0.00049):
        assert usd(value) != "$0" and any(d in usd(value) for d in "123456789")


def test_an_interval_is_the_estimate_then_its_bounds():
    assert interval(0.62, 0.48, 0.75) == "0.620 [0.480, 0.750]"
    assert interval(0.62) == "0.620" and interval(None) == "-"
    assert interval(0.5, 0.25, 0.75, digits=2) == "0.50 [0.25, 0.75]"


def test_the_catalog_studio_and_reports_share_it():
    from modelatlas.catalog.format import money
    from modelatlas.evals.report_terminal import fmt_cost
    from modelatlas.strategies.choose.recommend import money as decision_money
    from modelatlas.studio.web import templates

    assert money(0.15) == "$0.15" and money(None) == "?"
    assert fmt_cost(0.0000083) == decision_money(0.0000083) == usd(0.0000083)
    assert templates.env.filters["usd"](0.042) == "$0.042"
    assert templates.env.filters["ci"](0.62, 0.48, 0.75) == "0.620 [0.480, 0.750]"
