"""``/console/review``: ops review transcripts — the filtered list (a GET form, so a
filtered list is a link to share), full-text search, a transcript with each turn's NLU
result, verdicts on turns (correct / relabel, CSRF-checked forms) and the downloads: the
conversations as CSV or JSON, the corrections as Rasa NLU YAML, conversations as Rasa test
stories.

Every query and rule lives in ``bot.services.review``, ``bot.services.review_export`` and
``bot.search``; text is shown as the staff member's role may see it
(``bot.privacy.views.for_role``: masked for ops and admin).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timezone
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from api.db import in_db
from api.routes.console import check_csrf, render, require_role
from bot import search
from bot.db import get_sessionmaker
from bot.errors import InvalidInput, KefuError, NotFound
from bot.models import Message
from bot.services import review as rv
from bot.services import review_export as rx
from bot.services.staff import SessionView

router = APIRouter(prefix="/console/review", tags=["review"], include_in_schema=False)

REVIEW_ROLES = ("ops", "admin")
OpsStaff = Annotated[SessionView, Depends(require_role(*REVIEW_ROLES))]
FILTER_NAMES = tuple(rv.ReviewFilters.__dataclass_fields__)


def _options(choices: rv.FilterChoices) -> dict[str, list[tuple[str, str]]]:
    """(value, label) pairs of the list's selects that come from the data."""
    return {
        "intent": [(i, i) for i in choices.intents],
        "handoff": [("any", "yes, any reason 是"), ("none", "no 否")]
        + [(r, r) for r in choices.handoff_reasons],
        "outcome": [(k, k) for k in choices.outcomes],
        "segment_id": [(str(i), name) for i, name in choices.segments],
    }


def _filter_params(request: Request) -> dict[str, str]:
    return {k: request.query_params[k] for k in FILTER_NAMES if k in request.query_params}


def _stream(chunks: Callable[[Session], Iterator[str]], filename: str, media: str) -> Response:
    def body() -> Iterator[bytes]:
        # Its own session, open for as long as the download runs (rows are streamed).
        with get_sessionmaker()() as session:
            if media.startswith("text/csv"):
                yield "\ufeff".encode()  # spreadsheet programs then read UTF-8
            for chunk in chunks(session):
                yield chunk.encode()

    return StreamingResponse(
        body(),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("")
async def review_list(request: Request, who: OpsStaff, after: str = "") -> Response:
    params = _filter_params(request)

    def load(session: Session) -> dict[str, Any]:
        choices = rv.filter_choices(session=session)
        filters = rv.parse_filters(params)
        page = rv.list_conversations(
            session=session, filters=filters, role=who.staff.role, cursor=after or None
        )
        return {"choices": choices, "filters": filters, "page": page}

    try:
        found = await in_db(load)
    except KefuError as exc:
        choices = await in_db(lambda s: rv.filter_choices(session=s))
        return render(
            request, "console/review/list.html", who, status=400, error=str(exc),
            options=_options(choices), filters=None, values=params, page=None, next_url=None,
            query_string=urlencode(params),
        )  # fmt: skip
    page: rv.ReviewPage = found["page"]
    next_url = None
    if page.next_cursor:
        next_url = "/console/review?" + urlencode({**params, "after": page.next_cursor})
    return render(
        request,
        "console/review/list.html",
        who,
        values=params,
        next_url=next_url,
        query_string=urlencode(params),
        first_page=not after,
        options=_options(found["choices"]),
        filters=found["filters"],
        page=page,
    )


def _transcript_context(session: Session, conversation_id: str, role: str) -> dict[str, Any]:
    return {
        "t": rv.transcript(session=session, conversation_id=conversation_id, role=role),
        "intents": rv.intent_choices(),
        "entity_types": rv.entity_choices(),
        "statuses": rv.REVIEW_STATUSES,
    }


async def _transcript_page(
    request: Request, who: SessionView, conversation_id: str, *, error: str | None = None,
    status: int = 200,
) -> Response:  # fmt: skip
    try:
        found = await in_db(lambda s: _transcript_context(s, conversation_id, who.staff.role))
    except NotFound:
        return render(
            request, "console/review/transcript.html", who, status=404,
            error="No such conversation. 没有这个会话。", t=None,
        )  # fmt: skip
    return render(
        request, "console/review/transcript.html", who, status=status, error=error, **found
    )


@router.get("/c/{conversation_id}")
async def transcript_page(request: Request, who: OpsStaff, conversation_id: str) -> Response:
    return await _transcript_page(request, who, conversation_id)


@router.post("/c/{conversation_id}/turns/{message_id}")
async def label_turn(
    request: Request,
    who: OpsStaff,
    conversation_id: str,
    message_id: int,
    status: Annotated[str, Form(max_length=16)],
    intent: Annotated[str, Form(max_length=64)] = "",
    entities: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(who, csrf_token)

    def work(session: Session) -> None:
        message = session.get(Message, message_id)
        if message is None or message.conversation_id != conversation_id:
            raise NotFound(f"no message {message_id} in this conversation")
        rv.label_turn(
            session=session,
            message_id=message_id,
            status=status,
            reviewer_id=who.staff.id,
            intent=intent or None,
            annotated=entities if status == "relabelled" else None,
        )
        session.commit()

    try:
        await in_db(work)
    except NotFound as exc:
        return await _transcript_page(request, who, conversation_id, error=str(exc), status=404)
    except KefuError as exc:
        return await _transcript_page(request, who, conversation_id, error=str(exc), status=400)
    return RedirectResponse(
        f"/console/review/c/{conversation_id}#turn-{message_id}", status_code=303
    )


@router.post("/c/{conversation_id}/status")
async def review_status(
    request: Request,
    who: OpsStaff,
    conversation_id: str,
    status: Annotated[str, Form(max_length=16)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(who, csrf_token)

    def work(session: Session) -> None:
        rv.set_review_status(
            session=session, conversation_id=conversation_id, status=status,
            reviewer_id=who.staff.id,
        )  # fmt: skip
        session.commit()

    try:
        await in_db(work)
    except NotFound as exc:
        return await _transcript_page(request, who, conversation_id, error=str(exc), status=404)
    except KefuError as exc:
        return await _transcript_page(request, who, conversation_id, error=str(exc), status=400)
    return RedirectResponse(f"/console/review/c/{conversation_id}", status_code=303)


async def _checked_filters(request: Request) -> rv.ReviewFilters:
    params = _filter_params(request)

    def check(session: Session) -> rv.ReviewFilters:
        filters = rv.parse_filters(params)
        rv.conversation_conditions(session, filters)  # an unknown segment fails here, not mid-file
        return filters

    result: rv.ReviewFilters = await in_db(check)
    return result


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M")


@router.get("/export.csv")
async def export_csv(request: Request, who: OpsStaff) -> Response:
    filters = await _checked_filters(request)
    return _stream(
        lambda s: rx.export_csv(session=s, filters=filters),
        f"conversations-{_stamp()}.csv",
        "text/csv; charset=utf-8",
    )


@router.get("/export.json")
async def export_json(request: Request, who: OpsStaff) -> Response:
    filters = await _checked_filters(request)
    return _stream(
        lambda s: rx.export_json(session=s, filters=filters),
        f"conversations-{_stamp()}.json",
        "application/json",
    )


@router.get("/nlu.yml")
async def nlu_yaml(who: OpsStaff, since: str = "") -> Response:
    start: datetime | None = None
    if since:
        try:
            start = datetime.combine(date.fromisoformat(since), time.min, tzinfo=timezone.utc)
        except ValueError:
            raise InvalidInput(f"since: {since!r} is not a date (YYYY-MM-DD)") from None

    def work(session: Session) -> str:
        return rx.corrected_examples_yaml(session, since=start)

    body: str = await in_db(work)
    return PlainTextResponse(
        body,
        media_type="application/x-yaml; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="review_corrections.yml"'},
    )


@router.get("/stories.yml")
async def stories_yaml(
    request: Request, who: OpsStaff, ids: Annotated[list[str] | None, Query()] = None
) -> Response:
    chosen = [i for i in (ids or []) if i][: rv.MAX_STORY_CONVERSATIONS]
    filters = None if chosen else await _checked_filters(request)

    def work(session: Session) -> str:
        wanted = chosen or rx.story_ids(session=session, filters=filters or rv.ReviewFilters())
        return rx.conversation_test_stories(session, wanted)

    body: str = await in_db(work)
    return PlainTextResponse(
        body,
        media_type="application/x-yaml; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="review_stories.yml"'},
    )


def install(app: FastAPI) -> None:
    app.include_router(router)
    # jieba builds its dictionary on first use (about a second): do it now, off the event
    # loop, rather than in the first shopper message's flush.
    threading.Thread(target=search.segment, args=("预热 warm up",), daemon=True).start()
