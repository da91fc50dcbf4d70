"""Our Whisper-style English normaliser against the reference, and our WER/CER against jiwer's.

The reference is ``transformers.models.whisper.english_normalizer.EnglishTextNormalizer`` (a port
of Whisper's own), built with an empty British-to-American map: its full map (Whisper's
english.json) is not shipped with transformers, and ours is a small one, so spellings are
compared separately. Outputs are compared with whitespace collapsed at the ends: the reference
may leave a space at either end, which splits into the same words (and jiwer strips it for CER).
"""

from __future__ import annotations

import pytest

from modelatlas.evals.metrics.base import Context
from modelatlas.evals.metrics.english_normalizer import AMERICAN, basic_normalize, normalize_english
from modelatlas.evals.metrics.registry import get_metric
from modelatlas.evals.types import Item, Output
from tests.conftest import needs, run

CASES = [
    # numbers
    "Twenty five",
    "one hundred",
    "One hundred and twenty three thousand four hundred and fifty six",
    "nineteen ninety five",
    "the year two thousand and five",
    "one oh one",
    "double five seven",
    "three point one four",
    "two and a half hours",
    "the twenty first century",
    "the nineteen sixties and the nineties",
    "He came first, and she came second.",
    "five dollars and seven cents",
    "twenty dollars",
    "$20 million",
    "fifty percent of it, or 50 per cent",
    "minus three degrees",
    "1,000,000 people",
    "It costs $3.50, not 3.5 dollars.",
    "one",
    "ones and twos",
    "the hundredth time, thousands of times",
    "call me at five five five one two three four",
    "He's 21 and drives an mp3 player 4th",
    # fillers and brackets
    "Um, I think, uh, we should go. Hmm.",
    "Mm, mhm, that's right [laughs] (inaudible) <noise> okay",
    # contractions and titles
    "I won't, can't and shouldn't; let's go, y'all",
    "She's been there; he'd gone; they'd done it; it's got a point",
    "We're sure you'll see they've said I'm fine",
    "Mr. Smith met Dr. Jones and Mrs. Brown on St. Patrick's day",
    "I'm gonna wanna gotta",
    "don 't stop , it 's fine",
    # punctuation, symbols and diacritics
    "Hello, world! How are you?",
    "Café naïve résumé Zoë façade",
    "straße, œuvre, smørrebrød, Łódź",
    "A+B=C & D/E #hashtag @user",
    "e-mail: test@example.com -- ok...",
    "100% sure, ~10 km/h",
    "“Quoted” and ‘single’ — dashes – too",
    "tab\tand\nnewline   spaces",
]

# Where ours differs from the reference on purpose (see english_normalizer's docstring).
OURS_ONLY = {
    "the ninth of May": "the 9th of may",  # the reference knows only the misspelling "nineth"
    "The colour of the theatre": "the color of the theater",  # ours maps British spellings
    "they travelled to the centre": "they traveled to the center",
}


def reference():
    pytest.importorskip("transformers")
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer({})


@needs("transformers")
@pytest.mark.parametrize("text", CASES)
def test_same_as_the_reference(text):
    expected = " ".join(reference()(text).split())
    assert normalize_english(text) == expected


@needs("transformers")
def test_the_cases_exercise_every_step():
    """The list is no list of no-ops: the reference changes nearly every case."""
    changed = [text for text in CASES if " ".join(reference()(text).split()) != text]
    assert len(changed) >= len(CASES) - 1
    assert normalize_english("twenty five dollars") == "$25"
    assert normalize_english("Um, uh, [music] hello") == "hello"


# Number words, signs and symbols, drawn at random into phrases: the number reader's every rule
# and their combinations ("ninth" is left out: ours reads it on purpose, see OURS_ONLY).
VOCAB = [
    "zero", "oh", "o", "one", "two", "three", "five", "nine", "eleven", "twelve", "nineteen", "twenty",
    "forty", "ninety", "hundred", "thousand", "million", "first", "second", "third", "nineth", "fifth",
    "twelfth", "twentieth", "hundredth", "thousands", "sixes", "twenties", "and", "a", "half", "point",
    "double", "triple", "minus", "plus", "dollars", "dollar", "cents", "pound", "euros", "percent", "per",
    "cent", "the", "cat", "3", "25", "1.5", "$4", "007", "0", "1960s", "21st", ",", ".", "-", "%", "$",
    "'", "s",
]  # fmt: skip


@needs("transformers")
def test_same_as_the_reference_on_random_number_phrases():
    import random

    normalizer, rng = reference(), random.Random(13)
    for _ in range(3000):
        text = " ".join(rng.choice(VOCAB) for _ in range(rng.randint(1, 8)))
        assert normalize_english(text) == " ".join(normalizer(text).split()), text


@needs("transformers")
@pytest.mark.parametrize(("text", "ours"), OURS_ONLY.items())
def test_where_ours_differs_on_purpose(text, ours):
    assert normalize_english(text) == ours
    assert " ".join(reference()(text).split()) != ours


def test_the_spelling_map_covers_the_usual_forms():
    for british, american in [("colours", "colors"), ("organised", "organized"), ("travelling", "traveling")]:
        assert AMERICAN[british] == american
    assert "analyses" not in AMERICAN  # also the plural of analysis: left alone


@needs("transformers")
@pytest.mark.parametrize("text", CASES)
def test_basic_is_whispers_basic_normaliser(text):
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer

    assert basic_normalize(text) == " ".join(BasicTextNormalizer()(text).split())


PAIRS = [
    ("Mr. Smith paid twenty five dollars.", "mister smith paid $25"),
    ("The quick brown fox jumps over the lazy dog.", "the quick brown fox jumped over a lazy dog"),
    ("Um, I can't come at ten o'clock!", "I cannot come at 10 o clock"),
    ("She opened the window (quietly).", "she opened window and looked"),
    ("Café au lait, please", "cafe o lay please"),
]


@needs("jiwer")
@pytest.mark.parametrize("normalize", ["whisper", "basic", "none"])
def test_wer_and_cer_match_jiwer_on_the_normalised_strings(normalize):
    import jiwer

    from modelatlas.evals.metrics.speech import NORMALISERS

    clean = NORMALISERS[normalize]
    for name, one, corpus in (
        ("wer", jiwer.wer, jiwer.process_words),
        ("cer", jiwer.cer, jiwer.process_characters),
    ):
        metric = get_metric(name, normalize=normalize)
        scores = []
        for ref, hyp in PAIRS:
            item, output = Item(id="x", input="", reference=[ref]), Output(text=hyp)
            score = run(metric.score(item, output, Context()))
            assert score.value == pytest.approx(one(clean(ref), clean(hyp)))
            scores.append(score)
        refs, hyps = [clean(r) for r, _ in PAIRS], [clean(h) for _, h in PAIRS]
        assert metric.aggregate(scores) == pytest.approx(getattr(corpus(refs, hyps), name))


@needs("jiwer")
def test_normalisation_changes_the_rate():
    item, output = (
        Item(id="x", input="", reference=["Mr. Smith paid twenty five dollars."]),
        Output(text="mister smith paid $25"),
    )
    assert run(get_metric("wer").score(item, output, Context())).value == 0.0
    raw = run(get_metric("wer", normalize="none").score(item, output, Context())).value
    assert raw == pytest.approx(5 / 6)  # only "paid" is the same word as written


def test_a_reference_with_no_words_left_is_an_error_not_a_rate():
    score = run(
        get_metric("wer").score(Item(id="x", input="", reference=["[music]"]), Output(text="la"), Context())
    )
    assert score.error is not None and "empty once normalised" in score.error


def test_an_unknown_normalisation_is_refused_with_the_choices():
    from modelatlas.errors import ConfigError

    with pytest.raises(ConfigError, match="normalize") as info:
        get_metric("cer", normalize="english")
    assert "whisper" in str(info.value) + (info.value.hint or "")
