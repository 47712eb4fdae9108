"""``/console/analytics``: The analytics dashboard: conversations, containment, handoff, fallback, intents, satisfaction, response times."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

router = APIRouter(prefix="/console/analytics", include_in_schema=False)


def install(app: FastAPI) -> None:
    app.include_router(router)
