"""``/console/models``: Model lifecycle: retrain with corrections, gate on the held-out set, swap without an outage."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

router = APIRouter(prefix="/console/models", include_in_schema=False)


def install(app: FastAPI) -> None:
    app.include_router(router)
