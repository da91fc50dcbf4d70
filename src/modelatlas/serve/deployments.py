"""Running servers announce themselves under HOME/deployments/<pid>.json, so the studio and
`modelatlas` commands can list what is deployed on this machine. A file whose process has
gone is stale and is removed when read."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from modelatlas.config import settings
from modelatlas.processes import pid_alive


def folder() -> Path:
    return settings().home / "deployments"


def announce(host: str, port: int, models: list[str], auth: bool) -> Path:
    """Write this process's announcement (atomically); returns its path."""
    path = folder() / f"{os.getpid()}.json"
    settings().make_dirs(path.parent)  # a home made here is made private
    data = {
        "pid": os.getpid(),
        "url": f"http://{_visible(host)}:{port}/v1",
        "host": host,
        "port": port,
        "models": models,
        "auth": auth,
        "started_at": time.time(),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)
    return path


def withdraw(path: Path) -> None:
    path.unlink(missing_ok=True)


def list_deployments() -> list[dict]:
    """The servers running now, oldest first."""
    found = []
    base = folder()
    for path in sorted(base.glob("*.json")) if base.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not pid_alive(int(data.get("pid", 0))):
            path.unlink(missing_ok=True)
            continue
        found.append(data)
    return sorted(found, key=lambda d: d.get("started_at", 0))


def _visible(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
