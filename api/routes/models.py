"""``/console/models``: the model lifecycle for ops and admins.

The versions with their held-out metrics side by side with the active model's, the gate's
verdict, "Retrain with corrections" (a background job; the page polls a fragment while it
runs), "Activate" for a version that passed the gate (the engine manager swaps it in), and
the Rasa URL and generation serving now. The work lives in ``bot.services.lifecycle``; forms
carry the session's CSRF token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from api.db import in_db
from api.routes.console import check_csrf, render, require_role
from bot.clock import utcnow
from bot.errors import KefuError
from bot.services import lifecycle
from bot.services.staff import SessionView

router = APIRouter(prefix="/console/models", tags=["models"], include_in_schema=False)

MODEL_ROLES = ("ops", "admin")
OpsStaff = Annotated[SessionView, Depends(require_role(*MODEL_ROLES))]

STATUS_LABELS = {
    "training": "Training 训练中",
    "trained": "Trained 已训练",
    "failed": "Failed 失败",
    "gate_passed": "Gate passed 通过评测",
    "gate_failed": "Gate failed 未通过评测",
    "active": "Active 使用中",
    "retired": "Retired 已停用",
}
METRIC_LABELS = {
    "accuracy": "Accuracy 准确率",
    "macro_f1": "Macro-F1",
    "oos_rejection": "Out-of-scope rejected 范围外拒识",
}
LANGUAGES = ("zh", "en")


def _compare(metrics: dict[str, Any] | None, active: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One cell per (language, metric): the value and its difference from the active
    version's (None where either is missing)."""
    cells = []
    for language in LANGUAGES:
        for metric in lifecycle.METRICS:
            value = ((metrics or {}).get(language) or {}).get(metric)
            base = ((active or {}).get(language) or {}).get(metric)
            delta = value - base if value is not None and base is not None else None
            cells.append({"value": value, "delta": delta})
    return cells


def _state(session: Session) -> dict[str, Any]:
    versions = lifecycle.list_versions(session=session)
    active = lifecycle.active_version(session=session)
    endpoint = lifecycle.current_endpoint(session=session)
    pending = lifecycle.pending_activation(session=session)
    running = any(v.status == "training" for v in versions)
    baseline_ids = {v.id: v.model_id for v in versions}
    return {
        "versions": [
            {
                "v": v,
                "cells": _compare(v.metrics, active.metrics if active else None),
                "baseline": baseline_ids.get(v.baseline_id) if v.baseline_id else None,
            }
            for v in versions
        ],
        "active": active,
        "endpoint": endpoint,
        "pending": pending,
        "running": running,
    }


def _live(endpoint: lifecycle.EndpointView | None, now: datetime) -> bool:
    return endpoint is not None and endpoint.is_live(now, max_age=15.0)


async def _page(
    request: Request, who: SessionView, *, error: str | None = None, status: int = 200
) -> Response:
    state = await in_db(_state)
    context = {
        **state,
        "manager_live": _live(state["endpoint"], utcnow()),
        "status_labels": STATUS_LABELS,
        "metric_labels": METRIC_LABELS,
        "languages": LANGUAGES,
        "metrics": lifecycle.METRICS,
        "tolerance": request.app.state.settings.gate_tolerance,
        "error": error,
    }
    if request.headers.get("HX-Request"):
        return render(request, "console/models/_state.html", who, status=status, **context)
    return render(request, "console/models/index.html", who, status=status, **context)


@router.get("")
async def models_page(request: Request, who: OpsStaff) -> Response:
    return await _page(request, who)


@router.get("/state")
async def state_fragment(request: Request, who: OpsStaff) -> Response:
    """The part that changes while a job runs (htmx polls it)."""
    state = await in_db(_state)
    return render(
        request,
        "console/models/_state.html",
        who,
        **state,
        manager_live=_live(state["endpoint"], utcnow()),
        status_labels=STATUS_LABELS,
        metric_labels=METRIC_LABELS,
        languages=LANGUAGES,
        metrics=lifecycle.METRICS,
    )


@router.post("/retrain")
async def start_retrain(
    request: Request, who: OpsStaff, csrf_token: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    check_csrf(who, csrf_token)
    settings = request.app.state.settings
    try:
        version, corrections = await in_db(
            lambda s: lifecycle.start_retrain(
                session=s, settings=settings, corrections=lifecycle.corrections_from_review
            )
        )
    except KefuError as exc:
        return await _page(request, who, error=str(exc), status=400)
    # Training takes minutes: a background thread runs it; the page follows the row.
    lifecycle.launch_retrain(version.id, corrections, settings=settings)
    return RedirectResponse("/console/models", status_code=303)


@router.post("/{version_id}/activate")
async def activate(
    request: Request,
    who: OpsStaff,
    version_id: int,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(who, csrf_token)
    try:
        await in_db(lambda s: lifecycle.request_activation(session=s, version_id=version_id))
    except KefuError as exc:
        status = 404 if exc.code == "not_found" else 400
        return await _page(request, who, error=str(exc), status=status)
    return RedirectResponse("/console/models", status_code=303)


def install(app: FastAPI) -> None:
    app.include_router(router)
