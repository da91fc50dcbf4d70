"""Metrics against hand-computed values; the judge on the echo backend and on SmolLM2."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest

from modelatlas.backends import RetryPolicy
from modelatlas.catalog.records import ModelRecord
from modelatlas.errors import ConfigError
from modelatlas.evals.metrics import Context, Metric, get_metric, metric_names, register_metric
from modelatlas.evals.metrics.choice import letter_prompt
from modelatlas.evals.metrics.judge import PAIRWISE_PROMPT, SCORE_PROMPT, SCORE_REMINDER
from modelatlas.evals.metrics.semantic import cosine
from modelatlas.evals.types import Item, Output, Score
from modelatlas.loading import load_model
from tests.conftest import needs, run

PYPROJECT = Path(__file__).parent.parent / "pyproject.toml"


def score(name, output, reference=(), ctx=None, **item):
    """One item's score: ``output`` is the text, or an Output."""
    out = output if isinstance(output, Output) else Output(text=output)
    thing = Item(
        id=item.pop("id", "q1"), input=item.pop("input", "question?"), reference=list(reference), **item
    )
    return run(get_metric(name).score(thing, out, ctx or Context()))


def value(name, output, reference=(), ctx=None, **item):
    result = score(name, output, reference, ctx, **item)
    assert result.error is None, result.error
    return result.value


def scores(name, pairs, ctx=None):
    """Scores of (output, references) pairs."""
    return [score(name, out, refs, ctx, id=f"q{i}") for i, (out, refs) in enumerate(pairs)]


def echo_judge(**options):
    return load_model(ModelRecord(id="test/judge", backend="echo", options=options))


# -- registry ----------------------------------------------------------------------------------


def test_every_metric_in_pyproject_resolves():
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"]["modelatlas.metrics"]
    assert len(declared) == 27 and "pass_at_k" in declared and "tool_call_match" in declared
    assert set(declared) <= set(metric_names())
    for name in declared:
        metric = get_metric(name)
        assert isinstance(metric, Metric) and metric.name == name


def test_unknown_metric_says_did_you_mean_and_lists_the_known_ones():
    with pytest.raises(ConfigError) as info:
        get_metric("exact_mach")
    assert "Did you mean 'exact_match'" in str(info.value)
    assert "Known metrics:" in str(info.value) and "rouge_l" in str(info.value)


def test_register_metric_at_run_time(monkeypatch):
    # The metrics registered here are forgotten after the test: a later test that lists every
    # metric (test_metric_options, in the same process under pytest-xdist) must not meet them.
    from modelatlas.evals.metrics.registry import METRICS

    monkeypatch.setattr(METRICS, "_registered", dict(METRICS._registered))
    monkeypatch.setattr(METRICS, "_loaded", dict(METRICS._loaded))

    class Shouting(Metric):
        name = "shouting"
        needs_reference = False

        async def score(self, item, output, ctx):
            return Score(value=float(output.text.isupper()))

    register_metric("shouting", Shouting)
    register_metric("shouting_lazy", "modelatlas.evals.metrics.text:ExactMatch")
    assert {"shouting", "shouting_lazy"} <= set(metric_names())
    assert value("shouting", "HEY") == 1.0
    assert get_metric("shouting_lazy").name == "exact_match"
    register_metric("not_a_metric", lambda: "nope")
    with pytest.raises(ConfigError, match="not a Metric"):
        get_metric("not_a_metric")


# -- text --------------------------------------------------------------------------------------


def test_exact_match_normalises_case_space_and_surrounding_punctuation():
    assert value("exact_match", "  New   YORK. ", ["new york"]) == 1.0
    assert value("exact_match", "Rome", ["Paris", '"rome"']) == 1.0  # any reference
    assert value("exact_match", "the Paris", ["paris"]) == 0.0  # articles count here
    assert score("exact_match", "x", []).error == "the item has no reference"


def test_token_f1_by_hand():
    # pred tokens: cat sat on mat (articles gone); ref: cat on mat -> 3 in common.
    # P = 3/4, R = 3/3, F1 = 2 * 0.75 * 1 / 1.75 = 6/7.
    assert value("f1", "The cat sat on the mat.", ["A cat, on a mat", "dog"]) == pytest.approx(6 / 7)
    assert value("f1", "Paris", ["paris!"]) == 1.0
    assert value("f1", "banana", ["paris"]) == 0.0
    assert value("f1", "the", ["a"]) == 1.0  # both empty after normalisation


def test_contains_is_case_insensitive():
    assert value("contains", "The capital is PARIS.", ["Lyon", "paris"]) == 1.0
    assert value("contains", "The capital is Rome.", ["paris"]) == 0.0


def test_regex_pattern_from_options_or_item():
    ctx = Context(options={"pattern": r"\b\d{4}\b"})
    assert value("regex", "It was in 1969.", ctx=ctx) == 1.0
    assert value("regex", "It was long ago.", ctx=ctx) == 0.0
    assert value("regex", "Answer: yes", metadata={"pattern": "^Answer: (yes|no)$"}) == 1.0
    assert score("regex", "x").error.startswith("no regex pattern")


def test_regex_validate_fails_before_the_run():
    metric = get_metric("regex")
    metric.validate({"pattern": "a+"})
    with pytest.raises(ConfigError, match="needs a pattern"):
        metric.validate({})
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        metric.validate({"pattern": "(unclosed"})
    items = [Item(id="a", input="q", metadata={"pattern": "x"}), Item(id="b", input="q")]
    with pytest.raises(ConfigError, match="items without one: b"):
        metric.validate({}, items)
    metric.validate({}, items[:1])


def test_bleu_by_hand_and_against_sacrebleu():
    sacrebleu = pytest.importorskip("sacrebleu")
    assert value("bleu", "the cat sat on the mat", ["the cat sat on the mat"]) == pytest.approx(1.0)
    assert value("bleu", "x y z w", ["a b c d"]) == 0.0
    # "a b c d e" vs "a b c d f": n-gram precisions 4/5, 3/4, 2/3, 1/2; brevity penalty 1.
    # BLEU = (4/5 * 3/4 * 2/3 * 1/2) ** (1/4) = 0.2 ** 0.25 = 0.66874
    assert value("bleu", "a b c d e", ["a b c d f"]) == pytest.approx(0.2**0.25)
    hyp, refs = "the quick brown fox jumps", ["a quick brown fox leaps", "the fast fox jumps"]
    assert value("bleu", hyp, refs) == pytest.approx(sacrebleu.sentence_bleu(hyp, refs).score / 100)


def test_bleu_aggregate_is_corpus_bleu_with_padded_references():
    sacrebleu = pytest.importorskip("sacrebleu")
    pairs = [("a b c d e", ["a b c d f"]), ("the cat sat on a mat", ["the cat sat on the mat", "a cat sat"])]
    metric = get_metric("bleu")
    # The first item has one reference: sacrebleu needs it repeated in the second stream.
    streams = [["a b c d f", "the cat sat on the mat"], ["a b c d f", "a cat sat"]]
    expected = sacrebleu.corpus_bleu([p[0] for p in pairs], streams).score / 100
    assert metric.aggregate([*scores("bleu", pairs), Score(error="x")]) == pytest.approx(expected)
    # One item: corpus BLEU is the hand-computed 0.2 ** 0.25 above.
    assert metric.aggregate(scores("bleu", pairs[:1])) == pytest.approx(0.2**0.25)
    assert metric.aggregate([]) is None


def test_chrf_against_sacrebleu():
    sacrebleu = pytest.importorskip("sacrebleu")
    assert value("chrf", "the cat sat", ["the cat sat"]) == pytest.approx(1.0)
    assert value("chrf", "xyz", ["abc"]) == 0.0
    pairs = [("the cat sat", ["the cat sits"]), ("a dog ran", ["the dog runs", "a dog is running"])]
    for (hyp, refs), result in zip(pairs, scores("chrf", pairs)):
        assert result.value == pytest.approx(sacrebleu.sentence_chrf(hyp, refs).score / 100)
    streams = [["the cat sits", "the dog runs"], ["the cat sits", "a dog is running"]]
    expected = sacrebleu.corpus_chrf([p[0] for p in pairs], streams).score / 100
    assert get_metric("chrf").aggregate(scores("chrf", pairs)) == pytest.approx(expected)


def test_rouge_l_by_hand():
    # LCS of "the cat sat on the mat" and "the cat is on the mat" is "the cat on the mat": 5 of 6
    # words each way, so P = R = F = 5/6. The second reference shares nothing.
    assert value("rouge_l", "The cat sat on the mat.", ["the cat is on the mat", "dogs"]) == pytest.approx(
        5 / 6
    )
    assert value("rouge_l", "running fast", ["run fast"]) == 1.0  # stemming: running -> run


# -- classification ----------------------------------------------------------------------------


def test_accuracy_on_normalised_labels():
    assert value("accuracy", " Positive. ", ["positive"]) == 1.0
    assert value("accuracy", "negative", ["positive"]) == 0.0
    assert score("accuracy", "Neutral", ["positive"]).data == {"pred": "neutral", "gold": "positive"}


def test_macro_f1_by_hand_and_against_sklearn():
    gold = ["pos", "pos", "neg", "neg", "neu"]
    pred = ["pos", "neg", "neg", "neg", "pos"]
    results = scores("macro_f1", [(p, [g]) for p, g in zip(pred, gold)])
    assert [r.value for r in results] == [1.0, 0.0, 1.0, 1.0, 0.0]
    # pos: TP 1, FP 1, FN 1 -> 2/4 = 0.5; neg: TP 2, FP 1, FN 0 -> 4/5 = 0.8; neu: TP 0 -> 0.
    # macro F1 = (0.5 + 0.8 + 0) / 3 = 0.43333
    aggregate = get_metric("macro_f1").aggregate(results)
    assert aggregate == pytest.approx(1.3 / 3)
    f1_score = pytest.importorskip("sklearn.metrics").f1_score
    assert aggregate == pytest.approx(f1_score(gold, pred, average="macro"))
    # A label only predicted, never gold, still counts (with F1 0).
    gold, pred = ["a", "a", "b", "b", "a"], ["a", "c", "b", "a", "a"]
    results = scores("macro_f1", [(p, [g]) for p, g in zip(pred, gold)])
    expected = f1_score(gold, pred, average="macro", zero_division=0)
    assert get_metric("macro_f1").aggregate(results) == pytest.approx(expected)


# -- multiple choice ---------------------------------------------------------------------------

CHOICES = ["Paris", "London", "Rome", "Berlin"]


def mc(output, answer=1):
    return score("mc_accuracy", output, choices=CHOICES, answer=answer)


def test_mc_accuracy_by_logprobs_takes_the_first_of_a_tie():
    result = mc(Output(text="", choice_logprobs=[-3.0, -1.0, -1.0, -2.0]))
    assert result.value == 1.0 and result.data["pred"] == 1 and result.data["gold"] == 1
    assert mc(Output(choice_logprobs=[-1.0, -2.0, -3.0, -4.0])).value == 0.0
    assert mc(Output(choice_logprobs=[-1.0, -2.0])).error == "2 log-probabilities for 4 choices"


@pytest.mark.parametrize(
    ("text", "pred"),
    [
        ("B", 1),
        ("(B)", 1),
        ("Answer: B", 1),
        ("B) London", 1),
        ("the answer is b", 1),
        ("Answer: (c)", 2),
        ("**D**", 3),
        ("london", 1),
        ("I think A. No: the answer is C.", 2),
    ],
)
def test_mc_accuracy_parses_letter_answers(text, pred):
    result = mc(text, answer=pred)
    assert result.value == 1.0 and result.data["pred"] == pred


@pytest.mark.parametrize("text", ["junk", "the answer is a city", "E", ""])
def test_mc_accuracy_unparseable_answer_is_zero_not_an_error(text):
    result = mc(text)
    assert result.error is None and result.value == 0.0
    assert result.data["parsed"] is None and result.data["pred"] is None and result.data["gold"] == 1


def test_letter_prompt():
    prompt = letter_prompt(Item(id="q", input="Capital of Italy?", choices=CHOICES, answer=2))
    assert prompt.startswith("Capital of Italy?\n\nA. Paris\nB. London\nC. Rome\nD. Berlin\n\n")
    assert "letter" in prompt


# -- retrieval ---------------------------------------------------------------------------------

RELEVANT = ["d1", "d3", "d7"]
RETRIEVED = Output(retrieved=["d2", "d1", "d5", "d3", "d9", "d7"])


def test_retrieval_by_hand():
    # Top 5: d2 d1 d5 d3 d9 -> d1 and d3 of the 3 relevant: recall 2/3.
    assert value("recall_at_k", RETRIEVED, RELEVANT) == pytest.approx(2 / 3)
    assert value("recall_at_k", RETRIEVED, RELEVANT, Context(options={"k": 6})) == 1.0
    # The first relevant (d1) is at rank 2.
    assert value("mrr", RETRIEVED, RELEVANT) == 0.5
    assert value("mrr", RETRIEVED, RELEVANT, Context(options={"k": 1})) == 0.0
    # DCG@5 = 1/log2(3) + 1/log2(5) = 0.63093 + 0.43068 = 1.06161
    # IDCG@5 = 1/log2(2) + 1/log2(3) + 1/log2(4) = 1 + 0.63093 + 0.5 = 2.13093; nDCG = 0.49819
    assert value("ndcg", RETRIEVED, RELEVANT) == pytest.approx(1.06161 / 2.13093, abs=1e-5)
    perfect = Output(retrieved=["d7", "d3", "d1", "d2"])
    assert value("ndcg", perfect, RELEVANT) == pytest.approx(1.0)


def test_retrieval_errors():
    assert score("recall_at_k", Output(text="x"), RELEVANT).error == "the strategy returned no retrieved ids"
    with pytest.raises(ConfigError, match="at least 1"):
        get_metric("ndcg").validate({"k": 0})
    get_metric("ndcg").validate({"k": 3})


# -- speech ------------------------------------------------------------------------------------


def test_wer_per_item_and_corpus():
    pairs = [("a x c d", ["a b c d"]), ("e f", ["e f"])]
    results = scores("wer", pairs)
    assert [r.value for r in results] == [0.25, 0.0]  # 1 substitution of 4 words; none
    metric = get_metric("wer")
    assert metric.higher_is_better is False
    # Corpus: 1 edit over 4 + 2 = 6 reference words = 0.1667 (the mean of the rates is 0.125).
    assert metric.aggregate(results) == pytest.approx(1 / 6)


def test_cer_per_item_and_corpus():
    results = scores("cer", [("abxd", ["abcd"]), ("ef", ["ef"])])
    assert [r.value for r in results] == [0.25, 0.0]
    assert get_metric("cer").aggregate(results) == pytest.approx(1 / 6)  # 1 edit / 6 characters


# -- semantic similarity -----------------------------------------------------------------------


def test_cosine_by_hand():
    assert cosine([1.0, 0.0], [1.0, 1.0]) == pytest.approx(1 / math.sqrt(2))
    assert cosine([0.0, 0.0], [1.0, 1.0]) == 0.0


def test_semantic_similarity_is_the_best_cosine_over_references():
    ctx = Context(embedder=echo_judge())  # echo embeds by hashing: equal texts, equal vectors
    assert value("semantic_similarity", "same words", ["other", "same words"], ctx) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="needs an embedding model"):
        score("semantic_similarity", "x", ["y"])


@needs("sentence_transformers")
def test_semantic_similarity_with_minilm():
    ctx = Context(embedder=load_model("local/all-minilm-l6-v2"))
    close = value("semantic_similarity", "A cat sits on the mat.", ["A cat is sitting on the mat."], ctx)
    far = value("semantic_similarity", "A cat sits on the mat.", ["Stock prices fell sharply."], ctx)
    assert close > 0.8 and far < 0.3


# -- judges ------------------------------------------------------------------------------------


def test_judge_score_reads_the_final_line():
    judge = echo_judge(reply="Correct and clear. Score: 4")
    result = score("judge_score", "Paris", ["Paris"], Context(judge=judge))
    assert result.value == 4.0 and judge.backend.calls == 1
    assert result.data["answers"] == ["Correct and clear. Score: 4"]


def test_unparseable_judge_answer_is_retried_once_then_an_error():
    judge = echo_judge(reply="I like it")
    result = score("judge_score", "Paris", ctx=Context(judge=judge))
    assert judge.backend.calls == 2
    assert result.value is None and result.error == "unparseable judge answer: I like it"
    assert result.data["answers"] == ["I like it", "I like it"]


def test_the_retry_adds_a_reminder_and_can_succeed():
    item = Item(id="q", input="Capital of France?")
    prompt = SCORE_PROMPT.format(question=item.input, reference="", answer="Paris")
    judge = echo_judge(responses={prompt: "Nice", f"{prompt}\n\n{SCORE_REMINDER}": "Score: 5"})
    result = run(get_metric("judge_score").score(item, Output(text="Paris"), Context(judge=judge)))
    assert result.value == 5.0 and judge.backend.calls == 2


def test_judge_pass():
    ctx = Context(judge=echo_judge(reply="It is right. **Verdict: PASS**"))
    assert value("judge_pass", "Paris", ["Paris"], ctx) == 1.0
    assert value("judge_pass", "x", ctx=Context(judge=echo_judge(reply="verdict: fail"))) == 0.0


def test_a_failing_judge_is_a_score_error():
    record = ModelRecord(id="test/judge", backend="echo", options={"fail_first": 5})
    judge = load_model(record, retry=RetryPolicy(max_attempts=1))
    result = score("judge_pass", "x", ctx=Context(judge=judge))
    assert result.error.startswith("judge call failed: echo: simulated rate limit")


def test_judge_metrics_need_a_judge():
    with pytest.raises(ConfigError, match="needs a judge model"):
        score("judge_score", "x")


def pairwise(judge, a="Paris is the capital.", b="I do not know."):
    item = Item(id="q", input="Capital of France?")
    metric = get_metric("judge_pairwise")
    return run(metric.compare(item, Output(text=a), Output(text=b), Context(judge=judge)))


def test_pairwise_cancels_position_bias():
    judge = echo_judge(reply="Winner: A")  # always prefers whatever comes first
    result = pairwise(judge)
    assert result.value == 0.5 and judge.backend.calls == 2
    assert result.data["verdicts"] == ["A", "A"] and result.data["preferred"] == ["A", "B"]


def test_pairwise_agreement_across_orders_decides():
    good, bad = "Paris is the capital.", "I do not know."

    def prompt(first, second):
        return PAIRWISE_PROMPT.format(
            question="Capital of France?", reference="", answer_a=first, answer_b=second
        )

    # A judge that looks at the content: it picks "Paris" in either position.
    responses = {prompt(good, bad): "A is right. Winner: A", prompt(bad, good): "B is right. Winner: B"}
    assert pairwise(echo_judge(responses=responses), good, bad).value == 1.0
    assert pairwise(echo_judge(responses=responses), bad, good).value == 0.0
    assert pairwise(echo_judge(reply="Winner: TIE")).value == 0.5
    result = pairwise(echo_judge(reply="hmm"))
    assert result.error == "unparseable judge answer: hmm" and len(result.data["answers"][0]) == 2


def test_pairwise_score_says_it_is_pairwise():
    with pytest.raises(ConfigError, match="compares two outputs"):
        score("judge_pairwise", "x", ctx=Context(judge=echo_judge()))


@pytest.fixture(scope="module")
def smol():
    return load_model("local/smollm2-135m-instruct")


@pytest.mark.slow
def test_judge_score_on_smollm2_is_a_value_or_a_counted_error(smol):
    cases = [
        ("What is the capital of France?", "Paris.", "Paris"),
        ("What is 2 + 2?", "5", "4"),
        ("Name a primary colour.", "Red.", "red"),
        ("Who wrote Hamlet?", "Charles Dickens wrote it.", "William Shakespeare"),
    ]
    metric, ctx = get_metric("judge_score"), Context(judge=smol, options={"judge_max_tokens": 128})
    results = [
        run(metric.score(Item(id=f"q{i}", input=q, reference=[ref]), Output(text=a), ctx))
        for i, (q, a, ref) in enumerate(cases)
    ]
    errors = [r for r in results if r.error]
    for result in results:
        if result.error:
            assert result.error.startswith("unparseable judge answer") and result.value is None
            assert len(result.data["answers"]) == 2
        else:
            assert result.value in {1.0, 2.0, 3.0, 4.0, 5.0}
    assert not any(r.value is not None and math.isnan(r.value) for r in results)
    values = [r.value for r in results if r.ok]
    mean = metric.aggregate(results)
    assert mean is None if not values else mean == pytest.approx(sum(values) / len(values))
    print(f"\nSmolLM2 judge: {len(errors)} of {len(results)} answers unparseable after a retry")


def test_context_recall_counts_reference_words_found_in_the_chunks():
    from modelatlas.evals.types import Item, Output

    metric = get_metric("context_recall")
    item = Item(id="x", input="Refund window?", reference=["14 days for a full refund"])
    # content words of the reference: 14, days, full, refund -> all 4 are in the second chunk
    out = Output(text="", contexts=["Plus has a 14 day trial.", "A full refund is possible within 14 days"])
    assert run(metric.score(item, out, Context())).value == pytest.approx(1.0)
    out = Output(text="", contexts=["We refund in full within 14 hours"])
    # 14, full and refund are in the chunk; days is not -> 3/4
    assert run(metric.score(item, out, Context())).value == pytest.approx(0.75)
    nothing = run(metric.score(item, Output(text="x"), Context()))
    assert nothing.error.startswith("the strategy retrieved nothing")


def test_faithfulness_asks_the_judge_and_counts_unparseable_answers():
    from modelatlas.catalog.records import ModelRecord
    from modelatlas.evals.types import Item, Output
    from modelatlas.loading import load_model

    metric = get_metric("faithfulness")
    item = Item(id="x", input="Refund window?")
    out = Output(text="14 days.", contexts=["Refunds within 14 days."])
    yes = load_model(ModelRecord(id="test/yes", backend="echo", options={"reply": "Verdict: PASS"}))
    assert run(metric.score(item, out, Context(judge=yes))).value == 1.0
    mute = load_model(ModelRecord(id="test/mute", backend="echo", options={"reply": "hmm"}))
    score = run(metric.score(item, out, Context(judge=mute)))
    assert score.value is None and score.error.startswith("unparseable judge answer")
    assert mute.backend.calls == 2
