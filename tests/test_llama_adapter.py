"""llama-cpp-python below its public API is reached from one module, pinned to a tested range."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from modelatlas.backends import llama_adapter
from modelatlas.backends.llama_adapter import TESTED_RANGE, check_version
from modelatlas.errors import DependencyVersionError

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "modelatlas"
ADAPTER = SOURCE / "backends" / "llama_adapter.py"

# The private attributes llama-cpp-python 0.3.36 sets on its Llama, LlamaModel, LlamaContext
# and LlamaBatch objects (every ``self._name =`` in llama_cpp/llama.py and _internals.py).
LLAMA_PRIVATE = frozenset(
    {
        "_batch",
        "_c_tensor_split",
        "_candidates",
        "_chat_handlers",
        "_ctx",
        "_exit_stack",
        "_input_ids",
        "_is_hybrid",
        "_is_recurrent",
        "_kv_overrides_array",
        "_logits_all",
        "_lora_adapter",
        "_mirostat_mu",
        "_model",
        "_n_ctx",
        "_n_tokens",
        "_n_vocab",
        "_requires_eval",
        "_sampler",
        "_scores",
        "_seed",
        "_stack",
        "_token_eos",
        "_token_nl",
    }
)


def _reaches_into_llama_cpp(tree: ast.AST) -> list[str]:
    """What in ``tree`` touches llama-cpp-python other than through the adapter."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "llama_cpp"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "llama_cpp":
            found.append(f"from {node.module}")
        elif isinstance(node, ast.Call) and _called(node) in {"require", "import_module", "__import__"}:
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and str(first.value).split(".")[0] == "llama_cpp":
                found.append(f"{_called(node)}({first.value!r})")
        elif isinstance(node, ast.Attribute):
            own = isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"}
            c_function = node.attr.startswith("llama_") and node.attr != "llama_adapter"
            if c_function or (node.attr in LLAMA_PRIVATE and not own):
                found.append(ast.unparse(node))
    return found


def _called(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def test_only_the_adapter_touches_llama_cpp_below_its_public_api():
    offenders = {
        str(path.relative_to(ROOT)): hits
        for path in sorted(SOURCE.rglob("*.py"))
        if path != ADAPTER and (hits := _reaches_into_llama_cpp(ast.parse(path.read_text())))
    }
    assert offenders == {}


def test_the_check_sees_what_it_is_meant_to():
    """The check itself finds each kind of access (so an empty answer above means something)."""
    code = (
        "import llama_cpp\nfrom llama_cpp import _internals\nrequire('llama_cpp._internals', extra='x')\n"
        "lib.llama_decode(ctx, batch)\nllm._ctx.decode(llm._batch)\nself.engine.llm._model.vocab\n"
        "self._model = None\nfrom modelatlas.backends import llama_adapter\nllama_adapter.forget(llm)\n"
    )
    assert sorted(_reaches_into_llama_cpp(ast.parse(code))) == sorted(
        [
            "llama_cpp",
            "from llama_cpp",
            "require('llama_cpp._internals')",
            "lib.llama_decode",
            "llm._ctx",
            "llm._batch",
            "self.engine.llm._model",
        ]
    )


@pytest.mark.parametrize("version", ["0.3.16", "0.3.36", "0.3.99", "0.3.20.dev1", " 0.3.16 "])
def test_versions_in_the_tested_range_pass(version):
    check_version(version)


@pytest.mark.parametrize("version", ["0.3.15", "0.2.90", "0.4.0", "0.4.0rc1", "1.0", "unknown", ""])
def test_versions_outside_the_tested_range_fail_with_the_pip_command(version):
    with pytest.raises(DependencyVersionError) as caught:
        check_version(version)
    error = caught.value
    assert isinstance(error, ImportError) and error.exit_code == 3
    assert f"llama-cpp-python {version} is installed" in error.message
    assert error.hint == "Install a tested version with: pip install 'llama-cpp-python>=0.3.16,<0.4'"


def test_the_installed_llama_cpp_is_in_the_range_and_pyproject_pins_the_same():
    pytest.importorskip("llama_cpp")
    assert llama_adapter.library().__version__  # the real import, checked
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pins = [d for name in ("local", "dev") for d in extras[name] if d.startswith("llama-cpp-python")]
    assert [pin.split(">=", 1)[1] for pin in pins] == [TESTED_RANGE.removeprefix(">=")] * 2
