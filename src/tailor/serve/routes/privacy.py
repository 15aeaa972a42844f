"""Differentially private releases and the privacy ledger (admin key)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from tailor.config import load_settings
from tailor.privacy.dp import Bounds, BudgetExceeded, ledger_summary, release
from tailor.serve.deps import Admin, State
from tailor.serve.models import DPReport, DPReportRequest, Ledger, Problem
from tailor.serve.routes._common import KEYED

router = APIRouter(prefix="/privacy", tags=["privacy"], dependencies=[Admin], responses=KEYED)


@router.post(
    "/dp/report",
    response_model=DPReport,
    responses={
        409: {"model": Problem, "description": "Over the privacy budget: nothing was spent."},
        422: {"model": Problem, "description": "A bad ε or setting, or no sales to report."},
    },
)
def dp_report(body: DPReportRequest, state: State) -> dict:
    """Release the figures of a differentially private report (weekly sales by department,
    baskets per 4 weeks, RFM segment sizes), spending ``epsilon`` of the warehouse's privacy
    budget; the ledger records it. A request over the budget is refused (409) and spends
    nothing."""
    # Settings are read again: a changed budget in tailor.toml counts from the next request.
    privacy = load_settings(state.settings.db, state.settings.config).privacy
    bounds = Bounds.from_mapping(privacy.dp_bounds)
    try:
        with state.write_lock, state.reading() as wh:
            found = release(
                wh, body.epsilon, budget=privacy.dp_budget, bounds=bounds, channel="api",
                as_of=None if body.as_of is None else body.as_of.isoformat(),
            )  # fmt: skip
    except BudgetExceeded as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return found.as_dict()


@router.get("/ledger", response_model=Ledger)
def ledger(state: State) -> dict:
    """The ε spent by differentially private releases of the warehouse's data, and the budget
    left."""
    privacy = load_settings(state.settings.db, state.settings.config).privacy
    with state.reading() as wh:
        return ledger_summary(wh, privacy.dp_budget)
