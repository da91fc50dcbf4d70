"""Execution-based scoring of generated code: ``pass_at_k``.

Each sample's code is taken from the model's answer (:func:`extract_code`: the first fenced
Python block, else the whole answer), joined with the item's fields into one program
(:func:`build_program`) and run in the sandbox (:mod:`modelatlas.evals.sandbox`). A sample passes
when the program's last line runs; a failed test, a crash, a timeout and a syntax error are all
failed samples, never an errored item.

Dataset fields (columns the dataset reader does not know are kept in ``Item.metadata``):

- ``tests`` (required): code that raises when the answer is wrong (``assert``s, or HumanEval's
  ``def check(candidate): ...`` followed by ``check(entry_point)``);
- ``code_prefix`` (optional): code placed before the model's, e.g. HumanEval's prompt with its
  imports (the model's full function then redefines the prompt's stub);
- ``entry_point`` (optional): the function the tests call; a sample whose code (and prefix) never
  defines it fails with "no function named X" without being run.

With n samples per item (``--samples-per-item N``; ``Output.samples``) of which c pass, the item's
score is the unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained on
Code", eq. 1), pass@k = 1 - C(n-c, k) / C(n, k), for the first ``k`` option; the others are in the
score's data as ``pass@K``. The run's figure is the mean over items (bootstrap CI as usual).
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Sequence
from typing import Any

from pydantic import Field, field_validator

from modelatlas.errors import ConfigError
from modelatlas.evals.metrics.base import Context, Metric
from modelatlas.evals.metrics.options import MetricOptions
from modelatlas.evals.sandbox import Execution, run_program
from modelatlas.evals.types import Item, Output, Score

PYTHON_TAGS = {"python", "py", "python3"}


def extract_code(text: str) -> str:
    """The code in a model's answer: the first fenced block tagged python (or py, python3), else
    the first untagged one, else the whole answer. A fence never closed runs to the end."""
    blocks = _fenced_blocks(text)
    for wanted in (lambda tag: tag in PYTHON_TAGS, lambda tag: tag == ""):
        for tag, body in blocks:
            if wanted(tag):
                return body
    return text


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language tag, body) of each ``` fenced block, in order."""
    blocks: list[tuple[str, str]] = []
    tag: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        fence = line.strip().startswith("```")
        if tag is None and fence:
            tag, body = line.strip()[3:].strip().lower().split(" ")[0], []
        elif tag is not None and fence:
            blocks.append((tag, "\n".join(body)))
            tag = None
        elif tag is not None:
            body.append(line)
    if tag is not None:  # unclosed: the rest of the answer
        blocks.append((tag, "\n".join(body)))
    return blocks


def continued(code: str, code_prefix: str | None) -> str:
    """The code as the program runs it after ``code_prefix``. A base model that continued a
    prefix ending inside a function (HumanEval's prompt ends with its docstring) answers with
    the function's body, and the runner strips answers, so the body's first line has lost its
    indentation: when the program does not parse as it is but does with that line indented as
    the prefix's last line is, it gets that indentation back. Anything else is left as it is."""
    if not code_prefix or not code or code[0].isspace():
        return code
    last = next((line for line in reversed(code_prefix.splitlines()) if line.strip()), "")
    indent = last[: len(last) - len(last.lstrip())]
    if not indent or _parses(f"{code_prefix}\n{code}"):
        return code
    return indent + code if _parses(f"{code_prefix}\n{indent}{code}") else code


def _parses(source: str) -> bool:
    """Whether ``source`` compiles (a full compile: ``return`` outside a function is refused too)."""
    try:
        compile(source, "<answer>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def build_program(code: str, tests: str, code_prefix: str | None = None) -> str:
    """The program a sample runs: the prefix (when given), the code, then the tests."""
    parts = [code_prefix, code, tests] if code_prefix else [code, tests]
    return "\n".join(parts) + "\n"


def defines(code: str, name: str) -> bool | None:
    """Whether ``code`` binds ``name`` anywhere (a def, a class, an assignment, an import);
    None when it does not parse (the sandbox then reports the syntax error)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
            return True
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id == name:
            return True
        if isinstance(node, ast.alias) and (node.asname or node.name.split(".")[0]) == name:
            return True
    return False


def pass_at_k_estimate(n: int, c: int, k: int) -> float:
    """The unbiased pass@k of n samples of which c pass: 1 - C(n-c, k) / C(n, k), as the
    product 1 - prod_{i=n-c+1}^{n} (1 - k/i), which never forms the huge binomials."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"pass@k needs 0 <= c <= n and k >= 1 (got n={n}, c={c}, k={k})")
    if k > n:
        raise ValueError(too_few(k, n))
    if n - c < k:
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def too_few(k: int, n: int) -> str:
    return f"pass@{k} needs at least {k} samples per item (got {n}); use --samples-per-item"


class PassAtKOptions(MetricOptions):
    k: int | list[int] = 1  # the first k is the score; the others go in its data
    timeout_s: float = Field(10.0, gt=0, le=600)  # per sample, wall clock
    memory_mb: int = Field(1024, ge=64)  # per sample, address space

    @field_validator("k", mode="before")
    @classmethod
    def _ks(cls, value: Any) -> int | list[int]:
        values = value if isinstance(value, list) else [value]
        if not values:
            raise ValueError("must list at least one k")
        for one in values:
            if isinstance(one, bool) or not isinstance(one, int) or one < 1:
                raise ValueError(f"must be a whole number of at least 1 (or a list of them), not {one!r}")
        return value

    @property
    def ks(self) -> list[int]:
        return list(dict.fromkeys(self.k if isinstance(self.k, list) else [self.k]))


class PassAtK(Metric):
    """pass@k: the chance that at least one of k samples passes the item's tests."""

    name = "pass_at_k"
    bounds = (0.0, 1.0)
    Options = PassAtKOptions
    options: PassAtKOptions
    needs_reference = False

    def check(self, items: Sequence[Item] | None = None) -> None:
        for item in items or []:
            tests = item.metadata.get("tests")
            if not isinstance(tests, str) or not tests.strip():
                where = f"line {item.line}" if item.line else f"item {item.id}"
                raise ConfigError(
                    f"The metric pass_at_k needs a 'tests' field (code that raises on a wrong answer) "
                    f"on every row; {where} has none.",
                    hint="Add 'tests' (e.g. \"assert add(1, 2) == 3\"), and optionally 'entry_point' "
                    "and 'code_prefix'.",
                )

    async def score(self, item: Item, output: Output, ctx: Context) -> Score:
        self.check([item])
        texts = output.samples or [output.text]
        runs = await asyncio.gather(*(self.execute(item, text) for text in texts))
        n, c = len(runs), sum(1 for r in runs if r.passed)
        data: dict[str, Any] = {"n": n, "passed": c}
        for k in self.options.ks:
            data[f"pass@{k}"] = pass_at_k_estimate(n, c, k) if k <= n else too_few(k, n)
        data["samples"] = [{"status": r.status, "detail": r.detail, "duration_s": r.duration_s} for r in runs]
        first = self.options.ks[0]
        if first > n:
            return Score(error=too_few(first, n), data=data)
        return Score(value=data[f"pass@{first}"], data=data)

    async def execute(self, item: Item, text: str) -> Execution:
        """Run one sample against the item's tests."""
        prefix = item.metadata.get("code_prefix") or None
        code = continued(extract_code(text), prefix)
        entry = item.metadata.get("entry_point") or None
        if entry and defines(code, entry) is False and not (prefix and defines(prefix, entry)):
            return Execution("failed", f"no function named {entry}", 0.0)
        program = build_program(code, item.metadata["tests"], prefix)
        return await run_program(program, timeout_s=self.options.timeout_s, memory_mb=self.options.memory_mb)
