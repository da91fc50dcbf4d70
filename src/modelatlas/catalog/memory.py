"""How much memory a model needs to run here, and whether this machine has it.

Sizes are in GB of 2**30 bytes, as ``free -g`` and task managers count them. The estimate is a
rule of thumb, deliberately simple:

    weights + weights * (5% + 15% * window / 8192) + 0.3 GB

- ``weights``: the model file's size (a GGUF file is memory-mapped whole), or parameters times
  bits per weight when there is no file.
- ``15% * window / 8192``: the KV cache, which grows linearly with the context window the backend
  opens. The backends open the trained window capped at 8192 tokens (``DEFAULT_WINDOW``); at that
  window the f16 cache of a 7-8B decoder is 10-25% of its 4-bit weights (Llama 3 8B: 1.07 GB for
  4.9 GB of Q4_K_M). Tiny models need relatively more (SmolLM2 135M: 0.19 GB for 0.09 GB), which
  the fixed 0.3 GB below covers.
- ``5%``: compute buffers and activations, which do not depend much on the window.
- ``0.3 GB``: the runtime itself (llama.cpp or torch buffers, the tokenizer, Python objects).
"""

from __future__ import annotations

from pathlib import Path

GIB = 2**30
DEFAULT_WINDOW = 8192  # the backends' default context cap (llamacpp_engine.DEFAULT_MAX_CTX)
KV_SHARE = 0.15  # of the weights, for a DEFAULT_WINDOW-token KV cache
BUFFER_SHARE = 0.05  # of the weights, for compute buffers and activations
RUNTIME_GB = 0.3  # fixed cost of the runtime


def available_gb() -> float:
    """Memory available to a new process on this machine, in GB."""
    try:
        import psutil

        return psutil.virtual_memory().available / GIB
    except ImportError:
        return _meminfo_available() / GIB


def _meminfo_available(meminfo: Path = Path("/proc/meminfo")) -> float:
    """MemAvailable from /proc/meminfo, in bytes (0 when it cannot be read)."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024  # the value is in kB
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def estimate_gb(
    file_bytes: int | None = None,
    parameters: int | None = None,
    bits: float | None = None,
    context_length: int | None = None,
) -> float | None:
    """Memory to run the model here, in GB; None when neither a file size nor parameters are known.

    ``file_bytes`` wins when given. Without ``bits``, parameters count as 16-bit weights (the
    precision most checkpoints are published in).
    """
    if file_bytes is not None and file_bytes > 0:
        weights = float(file_bytes)
    elif parameters is not None and parameters > 0:
        weights = parameters * (bits if bits else 16) / 8
    else:
        return None
    window = min(context_length or DEFAULT_WINDOW, DEFAULT_WINDOW)
    overhead = weights * (BUFFER_SHARE + KV_SHARE * window / DEFAULT_WINDOW)
    return round((weights + overhead) / GIB + RUNTIME_GB, 3)


def fits(memory_gb: float | None) -> bool | None:
    """Whether ``memory_gb`` fits in the memory available now; None when the need is unknown."""
    if memory_gb is None:
        return None
    return memory_gb <= available_gb()
