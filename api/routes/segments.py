"""``/console/segments``: ops build a segment rule, preview it (count and first members),
save it, page through a saved segment's members and download them as CSV.

The rule language and every query live in ``bot.services.segments``; this module only turns
forms into calls and results into pages. Forms carry the session's CSRF token.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from api.db import in_db
from api.routes.console import check_csrf, render, require_role
from bot.db import get_sessionmaker
from bot.errors import KefuError, NotFound
from bot.services import segments as seg
from bot.services.staff import SessionView

router = APIRouter(prefix="/console/segments", tags=["segments"], include_in_schema=False)

SEGMENT_ROLES = ("ops", "admin")
OpsStaff = Annotated[SessionView, Depends(require_role(*SEGMENT_ROLES))]
PREVIEW_MEMBERS = 20
EXAMPLE_RULE = {
    "all": [
        {"bought": {"category": "shirt", "colour": "blue"}},
        {"bought": {"category": "tie", "colour": "red"}},
        {"never_bought": {"product": "P-BLZ"}},
        {"marketing_consent": True},
    ]
}


def _pretty(rule: dict[str, Any]) -> str:
    return json.dumps(rule, ensure_ascii=False, indent=2)


def _preview(session: Session, rule: dict[str, Any], after_id: int = 0) -> dict[str, Any]:
    return {
        "count": seg.count_members(session=session, rule=rule),
        "members": seg.list_members(
            session=session, rule=rule, after_id=after_id, limit=PREVIEW_MEMBERS
        ),
    }


async def _builder(
    request: Request,
    who: SessionView,
    *,
    rule_text: str,
    name: str = "",
    preview: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    if request.headers.get("HX-Request") and preview is not None:
        return render(request, "console/segments_preview.html", who, status=status, **preview)
    saved = await in_db(lambda s: seg.list_segments(session=s))
    return render(
        request,
        "console/segments.html",
        who,
        status=status,
        rule_text=rule_text,
        name=name,
        preview=preview,
        saved=saved,
        error=error,
    )


@router.get("")
async def segments_page(request: Request, who: OpsStaff) -> Response:
    return await _builder(request, who, rule_text=_pretty(EXAMPLE_RULE))


@router.post("/preview")
async def preview(
    request: Request,
    who: OpsStaff,
    rule: Annotated[str, Form(max_length=seg.MAX_RULE_CHARS)],
    name: Annotated[str, Form(max_length=100)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(who, csrf_token)
    try:
        checked = seg.parse_rule(rule)
        found = await in_db(lambda s: _preview(s, checked))
    except KefuError as exc:
        return await _builder(request, who, rule_text=rule, name=name, error=str(exc), status=400)
    return await _builder(request, who, rule_text=rule, name=name, preview=found)


@router.post("")
async def save(
    request: Request,
    who: OpsStaff,
    rule: Annotated[str, Form(max_length=seg.MAX_RULE_CHARS)],
    name: Annotated[str, Form(max_length=100)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(who, csrf_token)
    try:
        saved = await in_db(
            lambda s: seg.save_segment(session=s, name=name, rule=rule, created_by=who.staff.id)
        )
    except KefuError as exc:
        return await _builder(request, who, rule_text=rule, name=name, error=str(exc), status=400)
    return RedirectResponse(f"/console/segments/{saved.id}", status_code=303)


@router.get("/{segment_id}")
async def saved_segment(
    request: Request, who: OpsStaff, segment_id: int, after: int = 0
) -> Response:
    def load(session: Session) -> dict[str, Any]:
        segment = seg.get_segment(session=session, segment_id=segment_id)
        return {"segment": segment, **_preview(session, segment.rule, after_id=max(0, after))}

    try:
        found = await in_db(load)
    except NotFound:
        return render(
            request, "console/segments.html", who, status=404, error="No such segment.",
            rule_text="", name="", preview=None, saved=[],
        )  # fmt: skip
    return render(
        request, "console/segment.html", who, rule_text=_pretty(found["segment"].rule), **found
    )


@router.get("/{segment_id}/export.csv")
async def export(who: OpsStaff, segment_id: int) -> Response:
    segment = await in_db(lambda s: seg.get_segment(session=s, segment_id=segment_id))

    def rows() -> Iterator[bytes]:
        # Its own session, open for as long as the download runs (rows are streamed).
        with get_sessionmaker()() as session:
            yield "\ufeff".encode()  # so spreadsheet programs read the Chinese names as UTF-8
            for chunk in seg.export_csv(session=session, rule=segment.rule):
                yield chunk.encode()

    filename = f"segment-{segment.id}.csv"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
