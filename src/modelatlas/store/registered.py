"""Models the user registered (endpoints, hosted models, files), kept as plain record data.

The store knows nothing about models: the catalog turns this data into ModelRecords.
"""

from __future__ import annotations

from sqlalchemy import select

from modelatlas.store.db import session
from modelatlas.store.schema import RegisteredModel


def add_model(model_id: str, record: dict, source: str = "user") -> None:
    """Register ``record`` under ``model_id``, replacing an earlier one with the same id."""
    with session() as s:
        row = s.get(RegisteredModel, model_id)
        if row is None:
            s.add(RegisteredModel(id=model_id, record=record, source=source))
        else:
            row.record, row.source = record, source


def remove_model(model_id: str) -> bool:
    """Forget ``model_id``; False when it was not registered."""
    with session() as s:
        row = s.get(RegisteredModel, model_id)
        if row is None:
            return False
        s.delete(row)
        return True


def get_registered(model_id: str) -> dict | None:
    with session() as s:
        row = s.get(RegisteredModel, model_id)
        return None if row is None else dict(row.record)


def list_registered() -> dict[str, dict]:
    with session() as s:
        rows = s.scalars(select(RegisteredModel).order_by(RegisteredModel.id)).all()
        return {r.id: dict(r.record) for r in rows}
