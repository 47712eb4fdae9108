"""Liveness and readiness. Ready means: the database answers, every Rasa server has a model
and a healthy action server, and the model has been warmed with one message."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from bot.db import session_scope

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


def _database_ok() -> bool:
    try:
        with session_scope() as session:
            session.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    engines = await state.engine.ready()
    database = await to_thread.run_sync(_database_ok)
    body: dict[str, Any] = {
        "database": database,
        "engine": engines,
        "warmed": state.warmed.is_set(),
    }
    ok = database and all(engines.values()) and state.warmed.is_set()
    body["status"] = "ready" if ok else "not_ready"
    return JSONResponse(body, status_code=200 if ok else 503)
