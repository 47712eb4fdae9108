"""``/console/review``: Ops transcript review: list, filters, search, transcript view, relabel and export."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

router = APIRouter(prefix="/console/review", include_in_schema=False)


def install(app: FastAPI) -> None:
    app.include_router(router)
