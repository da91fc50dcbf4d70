"""Decisions are kept as JSON files under the home folder (``decisions/ID.json``), newest
first when listed, so the studio and later commands can show them."""

from __future__ import annotations

from pathlib import Path

from modelatlas.strategies.choose.results import Decision


def folder() -> Path:
    from modelatlas.config import settings

    s = settings()
    return s.make_dirs(s.home / "decisions")


def save(decision: Decision) -> Path:
    from modelatlas.evals.report_files import atomic_write

    return atomic_write(folder() / f"{decision.id}.json", decision.model_dump_json(indent=2))


def saved_decisions() -> list[Decision]:
    found = []
    for path in folder().glob("*.json"):
        try:
            found.append(Decision.model_validate_json(path.read_text()))
        except ValueError:
            continue  # a file someone edited by hand: skipped, not fatal
    return sorted(found, key=lambda d: d.created_at, reverse=True)
