"""``/console/analytics``: the analytics dashboard for ops, supervisors and admins —
conversations, containment, handoff, fallback, intents, satisfaction, response times, a
weekday × hour heatmap and NLU confidence, for a range of local days (default: the last 14).

Every figure comes from ``bot.services.analytics``; this module turns the query string into a
range and the figures into a page (KPI tiles, charts drawn by api/static/analytics.js with the
vendored Chart.js, and a data table under each chart) or into JSON (``data.json``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from api.db import in_db
from api.errors import error_body
from api.routes.console import render, require_role
from bot.errors import KefuError
from bot.services import analytics
from bot.services.staff import SessionView
from bot.settings import get_settings

router = APIRouter(prefix="/console/analytics", tags=["analytics"], include_in_schema=False)

ANALYTICS_ROLES = ("ops", "supervisor", "admin")
AnalyticsStaff = Annotated[SessionView, Depends(require_role(*ANALYTICS_ROLES))]
HEAT_LEVELS = 10
WEEKDAYS = (
    ("Mon", "周一"),
    ("Tue", "周二"),
    ("Wed", "周三"),
    ("Thu", "周四"),
    ("Fri", "周五"),
    ("Sat", "周六"),
    ("Sun", "周日"),
)
# Handoff reasons (bot/services/handoff.py, actions/service.py, the gateway's own).
REASONS = {
    "requested": "Shopper asked 顾客要求",
    "complaint": "Complaint 投诉",
    "angry_complaint": "Angry complaint 强烈不满",
    "fallback": "Not understood twice 连续未理解",
    "vip": "VIP with a problem VIP 问题",
    "takeover": "Agent took over 坐席接管",
    "turn_failed": "Bot failed 机器人故障",
}


async def _figures(start: str | None, end: str | None) -> dict[str, Any]:
    tz = get_settings().store_timezone
    first, last = analytics.parse_range(start, end, tz=tz)
    return dict(await in_db(lambda s: analytics.dashboard(s, start=first, end=last, tz=tz)))


def _heat_level(count: int, peak: int) -> int:
    """0 for an empty cell, else 1..HEAT_LEVELS in proportion to the busiest cell."""
    if count <= 0 or peak <= 0:
        return 0
    return max(1, min(HEAT_LEVELS, round(count / peak * HEAT_LEVELS)))


def _page_context(data: dict[str, Any]) -> dict[str, Any]:
    peak = data["heatmap"]["max"]
    return {
        "data": data,
        "reasons": REASONS,
        "weekdays": WEEKDAYS,
        "heat": [
            [(count, _heat_level(count, peak)) for count in row] for row in data["heatmap"]["cells"]
        ],
    }


@router.get("")
async def dashboard_page(
    request: Request, who: AnalyticsStaff, start: str | None = None, end: str | None = None
) -> Response:
    try:
        data = await _figures(start, end)
    except KefuError as exc:
        return render(
            request,
            "console/analytics/index.html",
            who,
            status=400,
            error=str(exc),
            data=None,
            start=start or "",
            end=end or "",
        )
    return render(
        request,
        "console/analytics/index.html",
        who,
        start=data["period"]["start"],
        end=data["period"]["end"],
        **_page_context(data),
    )


@router.get("/data.json")
async def dashboard_data(
    who: AnalyticsStaff, start: str | None = None, end: str | None = None
) -> Response:
    try:
        data = await _figures(start, end)
    except KefuError as exc:
        return JSONResponse(error_body(exc), status_code=400)
    return JSONResponse(data)


def install(app: FastAPI) -> None:
    app.include_router(router)
