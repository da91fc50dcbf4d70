"""Datasets: JSONL, CSV and Hugging Face folders; bad rows are named by file and line."""

from __future__ import annotations

import csv
import json

import pytest

from modelatlas.errors import DatasetError
from modelatlas.evals.datasets import Fields, load_dataset

ROWS = [
    {"id": "a", "input": "2+2?", "reference": "4", "topic": "math"},
    {"id": "b", "input": "Capital of France?", "reference": ["Paris", "paris, France"]},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_items_references_and_metadata(tmp_path):
    data = load_dataset(write_jsonl(tmp_path / "d.jsonl", ROWS))
    assert data.n == 2 and data.has_references and not data.has_choices
    assert data.items[0].reference == ["4"] and data.items[1].reference == ["Paris", "paris, France"]
    assert data.items[0].metadata == {"topic": "math"} and data.items[1].line == 2


def test_same_content_same_hash_whatever_the_format(tmp_path):
    jsonl = load_dataset(write_jsonl(tmp_path / "d.jsonl", ROWS))
    with (tmp_path / "d.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "input", "reference", "topic"])
        writer.writeheader()
        writer.writerow(ROWS[0])
        writer.writerow({**ROWS[1], "reference": json.dumps(ROWS[1]["reference"]), "topic": None})
    from_csv = load_dataset(tmp_path / "d.csv")
    assert from_csv.items[1].reference == ["Paris", "paris, France"]
    changed = load_dataset(write_jsonl(tmp_path / "e.jsonl", [ROWS[0], {**ROWS[1], "reference": "Lyon"}]))
    assert jsonl.hash != changed.hash
    assert load_dataset(write_jsonl(tmp_path / "again.jsonl", ROWS)).hash == jsonl.hash


def test_hugging_face_datasets_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = [
        {**r, "reference": r["reference"] if isinstance(r["reference"], list) else [r["reference"]]}
        for r in ROWS
    ]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "hf"))
    data = load_dataset(tmp_path / "hf")
    assert [i.id for i in data.items] == ["a", "b"] and data.items[0].reference == ["4"]


def test_field_mapping_and_chat_messages(tmp_path):
    rows = [
        {"q": "Hi?", "gold": "Hello", "key": "x1"},
        {"q": None, "messages": [{"role": "user", "content": "Yo"}], "gold": "Hey", "key": "x2"},
    ]
    data = load_dataset(
        write_jsonl(tmp_path / "m.jsonl", rows), Fields(input="q", reference="gold", id="key")
    )
    assert data.items[0].input == "Hi?" and data.items[1].prompt_text == "Yo"
    assert [i.id for i in data.items] == ["x1", "x2"]


def test_multiple_choice_answers_by_index_letter_or_text(tmp_path):
    rows = [
        {"input": "q1", "choices": ["a", "b", "c"], "answer": 2},
        {"input": "q2", "choices": ["a", "b", "c"], "answer": "B"},
        {"input": "q3", "choices": ["red", "blue"], "answer": "blue"},
    ]
    data = load_dataset(write_jsonl(tmp_path / "mc.jsonl", rows))
    assert [i.answer for i in data.items] == [2, 1, 1] and data.has_choices


def test_bad_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n{not json}\n")
    with pytest.raises(DatasetError, match=r"bad\.jsonl:2: not valid JSON"):
        load_dataset(path)


def test_row_without_input_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "noinput.jsonl", [ROWS[0], {"id": "z", "question": "?"}])
    with pytest.raises(DatasetError, match=r"noinput\.jsonl:2: the row has no 'input'") as info:
        load_dataset(path)
    assert "question" in str(info.value)


def test_empty_dataset_and_duplicate_ids(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(DatasetError, match="has no rows"):
        load_dataset(tmp_path / "empty.jsonl")
    with pytest.raises(DatasetError, match="id 'a' repeats line 1"):
        load_dataset(write_jsonl(tmp_path / "dup.jsonl", [ROWS[0], ROWS[0]]))


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="No dataset at"):
        load_dataset(tmp_path / "nope.jsonl")
