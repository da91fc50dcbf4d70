"""Bad dataset files are clear errors naming file and line, never tracebacks (issue 11, item 12).

Each case goes through `modelatlas eval` (a dry run: the dataset is read and checked, nothing is
sent) and must exit with code 2, name ``file:line`` and print no traceback. A UTF-8 byte-order
mark, which Excel and Windows tools write, is accepted in JSONL and in a CSV header.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from modelatlas.catalog import user
from modelatlas.catalog.records import ModelRecord
from modelatlas.cli.main import app
from modelatlas.evals.datasets import load_dataset

runner = CliRunner()
GOOD = json.dumps({"id": "a", "input": "2+2?", "reference": "4"}) + "\n"


@pytest.fixture(autouse=True)
def echo_model():
    user.add(ModelRecord(id="test/echo", backend="echo"))


def dry_run(path, *extra):
    return runner.invoke(app, ["eval", str(path), "-m", "test/echo", "--dry-run", *extra])


def assert_clear_error(result, where: str, *words: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert where in result.output, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


# (file name, bytes, "file:line" expected, words the message must hold)
BAD = {
    "latin1-jsonl": (
        "d.jsonl",
        GOOD.encode() + '{"input": "café"}\n'.encode("latin-1"),
        "d.jsonl:2",
        "UTF-8",
    ),
    "binary-jsonl": ("d.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "d.jsonl:1", "UTF-8"),
    "nul-jsonl": ("d.jsonl", GOOD.encode() + b'{"input": "a\x00b"}\n', "d.jsonl:2", "binary"),
    "latin1-csv": ("d.csv", b"input,reference\nok,ok\ncaf\xe9,x\n", "d.csv:3", "UTF-8"),
    "binary-csv": ("d.csv", b"input,reference\n\x00\x01\x02,\x00\n", "d.csv:2", "binary"),
    "messages-number": ("d.jsonl", (GOOD + '{"messages": 5}\n').encode(), "d.jsonl:2", "messages"),
    "message-not-object": ("d.jsonl", b'{"messages": [5]}\n', "d.jsonl:1", "messages[0]"),
    "choices-number": ("d.jsonl", b'{"input": "q", "choices": 5, "answer": 0}\n', "d.jsonl:1", "choices"),
    "deep-json": (
        "d.jsonl",
        b'{"input": "q", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
        "d.jsonl:1",
        "nested",
    ),
    "deep-metadata": (
        "d.jsonl",
        b'{"input": "q", "x": ' + b"[" * 500 + b"]" * 500 + b"}\n",
        "d.jsonl:1",
        "nested",
    ),
    "deep-csv-cell": ("d.csv", b"input,reference\nq," + b"[" * 100_000 + b"\n", "d.csv:2", "nested"),
    "reference-object": (
        "d.jsonl",
        (GOOD + '{"input": "q", "reference": {"a": 1}}\n').encode(),
        "d.jsonl:2",
        "reference",
    ),
    "reference-list-of-objects": (
        "d.jsonl",
        b'{"input": "q", "reference": ["ok", {"a": 1}]}\n',
        "d.jsonl:1",
        "reference[1]",
    ),
    "input-nan": ("d.jsonl", (GOOD + '{"input": NaN, "reference": "x"}\n').encode(), "d.jsonl:2", "NaN"),
    "input-object": ("d.jsonl", b'{"input": {"q": 1}, "reference": "x"}\n', "d.jsonl:1", "input"),
    "id-list": ("d.jsonl", b'{"id": [1], "input": "q", "reference": "x"}\n', "d.jsonl:1", "id"),
    "answer-boolean": (
        "d.jsonl",
        b'{"input": "q", "choices": ["a", "b"], "answer": true}\n',
        "d.jsonl:1",
        "answer",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_dataset_is_a_clear_error_with_file_and_line(tmp_path, case):
    name, data, where, word = BAD[case]
    path = tmp_path / name
    path.write_bytes(data)
    assert_clear_error(dry_run(path), where, word)


def test_deep_json_in_a_real_process_prints_no_traceback(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_bytes(b'{"input": ' + b"[" * 200_000 + b"]" * 200_000 + b"}\n")
    done = subprocess.run(
        [sys.executable, "-m", "modelatlas", "eval", str(path), "-m", "test/echo", "--dry-run"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "deep.jsonl:1" in done.stderr and "nested" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_utf8_bom_is_accepted_in_jsonl(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode() + b'{"id": "b", "input": "3+3?", "reference": "6"}\n')
    result = dry_run(path, "--json")
    assert result.exit_code == 0, result.output
    data = load_dataset(path)
    assert [i.id for i in data.items] == ["a", "b"] and data.items[0].reference == ["4"]
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(path.read_bytes()[3:])
    assert load_dataset(plain).hash == data.hash  # the mark is not content


def test_utf8_bom_is_accepted_in_a_csv_header(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffinput,reference,id\nCapital of France?,Paris,fr\n".encode())
    result = dry_run(path, "--json")
    assert result.exit_code == 0, result.output
    item = load_dataset(path).items[0]
    assert (item.id, item.input, item.reference, item.metadata) == ("fr", "Capital of France?", ["Paris"], {})


def test_numbers_stay_accepted_as_text(tmp_path):
    path = tmp_path / "numbers.jsonl"
    path.write_text('{"id": 7, "input": "2+2?", "reference": 4, "choices": [3, 4], "answer": 1}\n')
    item = load_dataset(path).items[0]
    assert (item.id, item.reference, item.choices, item.answer) == ("7", ["4"], ["3", "4"], 1)
