"""What a fine-tune killed with -9 (or lost with its machine) leaves behind, cleaned up.

Such a process never reaches its ``except`` clause: its row stays "running" and, when it died
while saving, a ``.<name>.partial-<id>`` folder stays beside the adapters. The next fine-tune
(or anyone listing them) marks the row interrupted once its process is gone, and the partial
folders of fine-tunes that are not running any more are removed.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from modelatlas.config import settings
from modelatlas.store import finetunes as rows

PARTIAL = re.compile(r"^\.(?P<name>.+)\.partial-(?P<prefix>[0-9a-f]{8})$")


@dataclass
class Interrupted:
    """A fine-tune found dead: what it was, how far it got, what was removed."""

    finetune_id: str
    model_id: str
    pid: int | None
    created_at: datetime | None
    steps: int
    removed: list[str] = field(default_factory=list)


def clean_leftovers() -> list[Interrupted]:
    """Mark dead fine-tunes interrupted and remove partial adapters no live fine-tune owns."""
    found = [
        Interrupted(r["id"], r["model_id"], r["owner_pid"], r["created_at"], r["steps"])
        for r in rows.reap_finetunes()
    ]
    live = {r["id"][:8] for r in rows.list_finetunes(status="running")}
    by_prefix = {f.finetune_id[:8]: f for f in found}
    for folder in partial_folders():
        prefix = PARTIAL.match(folder.name)["prefix"]
        if prefix in live:
            continue  # still being written by a fine-tune that runs now
        shutil.rmtree(folder, ignore_errors=True)
        if prefix in by_prefix:
            by_prefix[prefix].removed.append(str(folder))
    return found


def partial_folders() -> list[Path]:
    """The ``.<name>.partial-<id>`` folders under ``<home>/adapters/<base-name>/``."""
    root = settings().home / "adapters"
    if not root.is_dir():
        return []
    return sorted(
        p
        for base in root.iterdir()
        if base.is_dir()
        for p in base.iterdir()
        if PARTIAL.match(p.name) and p.is_dir()
    )
