"""``/console/agent``: The agent console pages: queue, conversation view, replies with canned responses, notes, tags, close."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

router = APIRouter(prefix="/console/agent", include_in_schema=False)


def install(app: FastAPI) -> None:
    app.include_router(router)
