"""A local model under test runs in `modelatlas serve` (as it would be deployed), on a free
port of 127.0.0.1, started here and stopped by its process id."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from modelatlas.errors import BackendError
from modelatlas.processes import free_port, stop_process

START_TIMEOUT_S = 180.0


@contextlib.asynccontextmanager
async def local_server(model_id: str, parallel: int, base_model: bool = False) -> AsyncIterator[str]:
    """``modelatlas serve --model MODEL_ID --parallel N --no-auth`` until the block ends; yields
    its base URL (``http://127.0.0.1:PORT/v1``). A ``base_model`` (mode completion) gets
    ``--allow-chat-on-base``, so its chat requests are answered as the eval runner asks it, from
    the messages as plain text. Its log goes to a temporary file, named in the error if it does
    not come up."""
    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="modelatlas-loadtest-")) / "server.log"
    argv = [sys.executable, "-m", "modelatlas", "serve", "--model", model_id, "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--parallel", str(parallel), "--no-auth"]
    argv += ["--allow-chat-on-base"] if base_model else []
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        await _ready(f"http://127.0.0.1:{port}/health", proc, log_path)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await asyncio.to_thread(stop_process, proc)


async def _ready(url: str, proc: subprocess.Popen, log_path: Path) -> None:
    import httpx

    deadline = time.monotonic() + START_TIMEOUT_S
    async with httpx.AsyncClient(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-800:]
                raise BackendError(
                    f"`modelatlas serve` exited with code {proc.returncode} before it was ready:\n{tail}",
                    hint=f"Its whole log: {log_path}",
                )
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise BackendError(
        f"`modelatlas serve` did not answer {url} within {START_TIMEOUT_S:.0f} s.",
        hint=f"Its log: {log_path}",
    )
