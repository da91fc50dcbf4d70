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


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for a server this process starts)."""
    import socket as sockets

    with sockets.socket(sockets.AF_INET, sockets.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc, grace_s: float = 15.0) -> None:
    """Stop a server this process started, by its process id (never by name): SIGTERM, then
    SIGKILL after ``grace_s`` seconds. ``proc`` is a ``subprocess.Popen``."""
    import signal
    import subprocess

    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
