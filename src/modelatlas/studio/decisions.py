"""Decisions: what `modelatlas choose` picked, newest first, and each one whole."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from markupsafe import Markup

from modelatlas.studio.web import render

router = APIRouter()


@router.get("/decisions")
def decisions_page(request: Request):
    from modelatlas.strategies.choose.saved import saved_decisions

    return render(request, "decisions.html", decisions=saved_decisions())


@router.get("/decisions/{decision_id}")
def decision_page(request: Request, decision_id: str):
    from modelatlas.strategies.choose.report_html import decision_section
    from modelatlas.strategies.choose.saved import saved_decisions

    found = next((d for d in saved_decisions() if d.id == decision_id), None)
    if found is None:
        raise HTTPException(404, f"No decision {decision_id!r}. Make one with `modelatlas choose DATASET`.")
    return render(request, "decision.html", decision=found, section=Markup(decision_section(found)))
