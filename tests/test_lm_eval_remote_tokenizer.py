"""lm-evaluation-harness's ``local-completions`` with ``tokenizer_backend=remote`` against a real
`modelatlas serve` with a key: lm-eval tokenizes through our /tokenize and /tokenizer_info (it
has no tokenizer of its own), sends token ids with echo and logprobs, and its per-choice
log-likelihoods on a small local multiple-choice task match what our own Model.loglikelihood
computes for the same context and continuation."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.servers import modelatlas_serve, new_key

lm_eval = pytest.importorskip("lm_eval")

BASE = "local/gemma-3-270m"  # a base model whose tokenizer adds BOS: the harder case
ITEMS = [
    {"question": "What is the capital of France?", "choices": ["Paris", "Berlin", "Madrid"], "answer": 0},
    {"question": "What is the capital of Germany?", "choices": ["Rome", "Berlin", "Paris"], "answer": 1},
    {"question": "What is the capital of Italy?", "choices": ["Lisbon", "Vienna", "Rome"], "answer": 2},
    {"question": "What is the capital of Spain?", "choices": ["Madrid", "Oslo", "Athens"], "answer": 0},
]
TASK = """task: tiny_capitals
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: acc
"""
CLOSE = 1e-3  # nats: the same engine scores both; only the decode's float order may differ


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm_eval")
    secret = new_key(folder / "home", "lm-eval")
    with modelatlas_serve(folder, ["--model", BASE, "--parallel", "1"]) as base:
        yield base, secret, folder


def task_folder(folder) -> str:
    data = folder / "items.jsonl"
    data.write_text("".join(json.dumps(item) + "\n" for item in ITEMS))
    tasks = folder / "tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / "tiny_capitals.yaml").write_text(TASK.format(path=data))
    return str(tasks)


def our_loglikelihoods() -> list[list[float]]:
    from modelatlas.loading import load_model

    async def run():
        model = load_model(BASE)
        try:
            return [
                [
                    (await model.loglikelihood(f"Question: {item['question']}\nAnswer:", f" {c}")).logprob
                    for c in item["choices"]
                ]
                for item in ITEMS
            ]
        finally:
            await model.aclose()

    return asyncio.run(run())


def test_lm_eval_remote_tokenizer_matches_our_loglikelihood(served, monkeypatch):
    from lm_eval.tasks import TaskManager

    server, secret, folder = served
    monkeypatch.setenv("HF_DATASETS_CACHE", str(folder / "datasets"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    model_args = {
        "model": BASE,
        "base_url": f"{server}/v1/completions",
        "tokenizer_backend": "remote",
        "auth_token": secret,
        "header": {"Authorization": f"Bearer {secret}"},
        "num_concurrent": 1,
        "max_retries": 1,
    }
    results = lm_eval.simple_evaluate(
        model="local-completions",
        model_args=model_args,
        tasks=["tiny_capitals"],
        task_manager=TaskManager(include_path=task_folder(folder)),
        log_samples=True,
    )
    samples = sorted(results["samples"]["tiny_capitals"], key=lambda s: s["doc_id"])
    theirs = [[float(ll) for ll, _ in sample["filtered_resps"]] for sample in samples]
    ours = our_loglikelihoods()
    assert len(theirs) == len(ITEMS) and all(len(row) == 3 for row in theirs)
    worst = max(abs(a - b) for row_a, row_b in zip(theirs, ours, strict=True) for a, b in zip(row_a, row_b))
    print(f"\nlm-eval vs Model.loglikelihood: largest difference {worst:.2e} nats over 12 choices")
    assert worst < CLOSE, (theirs, ours)
    accuracy = results["results"]["tiny_capitals"]["acc,none"]
    expected = sum(row.index(max(row)) == item["answer"] for row, item in zip(ours, ITEMS)) / len(ITEMS)
    assert accuracy == pytest.approx(expected)
