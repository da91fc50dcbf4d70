"""Fingerprints of model files and folders, for the response cache's model identity.

Hashing a 250 MB file takes a second, so each fingerprint is remembered in the home cache,
keyed by the file's path, size and modification time.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from modelatlas.config import settings

_lock = threading.Lock()
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")


def fingerprint(path: str | Path) -> str:
    """sha256 of a file, or of a model folder's config files and weight files."""
    target = Path(path).resolve()
    stat = target.stat()
    key = f"{target}|{stat.st_size}|{stat.st_mtime_ns}"
    memo = _memo_path()
    with _lock:
        known = _read(memo)
        if key in known:
            return known[key]
        value = _hash_file(target) if target.is_file() else _hash_folder(target)
        known[key] = value
        _write(memo, known)
    return value


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _hash_folder(folder: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(folder)).encode())
        if file.suffix in WEIGHT_SUFFIXES:
            digest.update(_hash_file(file).encode())
        elif file.stat().st_size < 10_000_000:
            digest.update(file.read_bytes())
    return digest.hexdigest()


def _memo_path() -> Path:
    return settings().cache_dir / "fingerprints.json"


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write(path: Path, data: dict) -> None:
    settings().make_dirs(path.parent)  # a home made here is made private
    temp = path.with_suffix(f".{os.getpid()}.tmp")
    temp.write_text(json.dumps(data))
    os.replace(temp, path)
