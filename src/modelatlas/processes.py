"""Is a process still there? One answer for run owners, fine-tunes, studio jobs and servers."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def this_host() -> str:
    return socket.gethostname()


def pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` runs on this machine. A process killed but not yet reaped by its
    parent (a zombie) answers ``kill(pid, 0)`` too, so it counts as gone."""
    if pid is None or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc here: kill(pid, 0) is all we know
    return state not in ("Z", "X")
