"""``/console/supervisor``: The supervisor pages: live bot conversations with flags, agents and their load, reassignment."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

router = APIRouter(prefix="/console/supervisor", include_in_schema=False)


def install(app: FastAPI) -> None:
    app.include_router(router)
