"""modelatlas: explore AI models, compare them on your own data, improve and deploy them.

The Python facade::

    import modelatlas as ma

    model = ma.get_model("local/smollm2-135m-instruct")       # a Model (async generate, stream...)
    result = ma.evaluate("qa.jsonl", models=["local/smollm2-135m-instruct"])  # a RunResult
    found = ma.catalog.search("gpt", hosting="hosted", limit=5)  # ModelRecords, best first
    here = ma.list_models()                                    # what can run on this machine
    words = ma.transcribe("local/whisper-base", "speech.wav")  # a Transcript (text, segments...)
    drawn = ma.generate_image("my/sd", "a lighthouse at dusk", size="512x512", seed=7)  # Images

The names load on first use (PEP 562 ``__getattr__``): ``import modelatlas`` imports nothing
else, so the CLI, the server and a plugin that only reads ``__version__`` pay nothing for them.
"""

__version__ = "0.1.0"

# Not `from typing import TYPE_CHECKING`: type checkers read this name alike, and importing
# modelatlas should not import typing (or anything) on its own.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from modelatlas import catalog
    from modelatlas.facade import (
        EventLoopRunningError,
        aevaluate,
        agenerate_image,
        atranscribe,
        evaluate,
        generate_image,
        get_model,
        list_models,
        transcribe,
    )

# The facade's functions, each loaded from modelatlas.facade when first asked for.
_FACADE = (
    "EventLoopRunningError",
    "aevaluate",
    "agenerate_image",
    "atranscribe",
    "evaluate",
    "generate_image",
    "get_model",
    "list_models",
    "transcribe",
)

__all__ = [
    "EventLoopRunningError",
    "__version__",
    "aevaluate",
    "agenerate_image",
    "atranscribe",
    "catalog",
    "evaluate",
    "generate_image",
    "get_model",
    "list_models",
    "transcribe",
]


def __getattr__(name: str) -> object:
    # Anything else must raise AttributeError: `from modelatlas import store` asks this hook
    # first and imports the submodule only when it says no.
    if name in _FACADE:
        from modelatlas import facade

        value = getattr(facade, name)
        globals()[name] = value  # asked once
        return value
    if name == "catalog":
        import modelatlas.catalog  # the package itself (its `search` is the facade's search)

        return modelatlas.catalog
    raise AttributeError(f"module 'modelatlas' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
