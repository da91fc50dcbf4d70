"""The one stop-sequence scanner: whatever the chunking, the text comes out cut at the first stop."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelatlas.backends.stops import StopScanner, first_stop

# Few letters, so that stops occur, overlap each other and straddle pieces often.
ALPHABET = "ab\n."
texts = st.text(alphabet=ALPHABET, max_size=30)
stop_lists = st.lists(st.text(alphabet=ALPHABET, max_size=4), max_size=3)


def _expected(text: str, stops: list[str]) -> tuple[str, bool]:
    """The text cut where a stop sequence is first complete, found the slow way: grow the text
    one character at a time and look for a stop at its end (the longest, if two end there)."""
    for end in range(1, len(text) + 1):
        ending = [s for s in stops if s and text[:end].endswith(s)]
        if ending:
            return text[: end - max(map(len, ending))], True
    return text, False


def _scan(pieces: list[str], stops: list[str]) -> tuple[str, bool, list[str]]:
    scanner = StopScanner(stops)
    out = [scanner.feed(piece) for piece in pieces]
    out.append(scanner.flush())
    return "".join(out), scanner.stopped, out


@st.composite
def split_texts(draw) -> list[str]:
    """A text cut into pieces at random boundaries (empty pieces included, as a streamer may
    send them)."""
    text = draw(texts)
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=len(text) + 2)))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


@settings(max_examples=2000, deadline=None)
@given(pieces=split_texts(), stops=stop_lists)
def test_random_texts_split_anywhere_come_out_cut_at_the_first_stop(pieces, stops):
    text = "".join(pieces)
    got, stopped, _ = _scan(pieces, stops)
    assert (got, stopped) == _expected(text, stops)
    assert _scan([text], stops)[:2] == (got, stopped)  # streamed or all at once: the same answer


@given(pieces=split_texts(), stops=stop_lists)
def test_what_is_passed_on_never_has_to_be_taken_back(pieces, stops):
    """Every piece passed on is final: the text so far is always a beginning of the answer."""
    expected, _ = _expected("".join(pieces), stops)
    so_far = ""
    for out in _scan(pieces, stops)[2]:
        so_far += out
        assert expected.startswith(so_far)


def test_it_holds_back_only_what_may_begin_a_stop():
    scanner = StopScanner(["world", "\n\n"])
    assert scanner.feed("Hello wor") == "Hello "  # "wor" may begin "world"
    assert scanner.feed("m") == "worm"  # it did not
    assert scanner.feed(" and\n") == " and"
    assert scanner.feed("\n after") == "" and scanner.stopped
    assert scanner.feed("more") == "" and scanner.flush() == ""


def test_the_stop_complete_first_wins_over_one_that_starts_earlier():
    # "b" is complete after "ab", before "abc" is: generation stops there, in one piece or many.
    assert _scan(["abc"], ["abc", "b"])[0] == "a"
    assert _scan(["a", "b", "c"], ["abc", "b"])[0] == "a"
    assert _scan(["abc"], ["bc", "abc"])[0] == ""  # both end together: the longer counts
    assert first_stop("xxabc", ["abc", "b"]) == 3 and first_stop("xx", ["y"]) is None


def test_no_stops_pass_everything_at_once_and_empty_stops_are_ignored():
    assert _scan(["a", "bc"], [])[2] == ["a", "bc", ""]
    assert _scan(["a", "bc"], [""])[2] == ["a", "bc", ""]


def test_a_stop_that_is_not_text_fails_when_the_scanner_is_made():
    with pytest.raises(TypeError, match="NoneType"):
        StopScanner([None])  # type: ignore[list-item]
