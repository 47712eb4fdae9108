"""``/console/supervisor``: the supervisor pages — live bot conversations with their flags
(take over, watch), agents with status, load, first response time and the 30-second
response rate today, the conversations agents have (reassign), and the supervisor's own
status.

For the role ``supervisor`` only (admins manage staff; they do not run the floor). Every
figure and query lives in ``bot.services.supervision`` and ``bot.services.handoff``; this
module turns forms into calls and results into pages, in Chinese or English (``?lang=zh|en``,
remembered in a cookie). The board refreshes itself every few seconds and at once on any
event of the agent socket (``api/static/supervisor.js``); forms carry the session's CSRF
token.

- ``GET  /console/supervisor?sort=flags|low_confidence|repeated_fallback|negative|vip|wait|
  age|idle`` — the page (with ``HX-Request``: the board fragment only)
- ``GET  /console/supervisor/c/{id}`` — one conversation, read-only, with each shopper turn's
  intent, confidence and sentiment (``HX-Request``: the transcript only)
- ``POST /console/supervisor/c/{id}/take-over`` — the supervisor claims it (as the agent API's
  claim does) and goes to ``/console/agent/c/{id}`` to talk
- ``POST /console/supervisor/c/{id}/reassign`` ``to_agent`` — to another online agent with
  room; the shopper is told the new agent's name
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from api.db import in_db
from api.handoff import HandoffService, agent_key
from api.routes.console import check_csrf, render, require_role
from bot.errors import KefuError, NotFound
from bot.messages import system_message
from bot.models import Conversation
from bot.services import handoff as handoff_service
from bot.services import supervision
from bot.services.staff import SessionView

router = APIRouter(prefix="/console/supervisor", include_in_schema=False)

SUPERVISOR_ROLES = ("supervisor",)
Supervisor = Annotated[SessionView, Depends(require_role(*SUPERVISOR_ROLES))]
LIVE_MINUTES = 60  # bot conversations active within this long are on the board
LANG_COOKIE = "kefu_console_lang"

LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "现场监控",
        "live": "机器人会话",
        "live_note": f"尚无人工接手的会话：机器人正在服务的（最近 {LIVE_MINUTES} 分钟有消息）"
        "和排队等人工的",
        "agents": "客服状态",
        "assigned": "人工会话",
        "customer": "顾客",
        "anonymous": "匿名访客",
        "state": "状态",
        "flags": "标记",
        "last_message": "最近一句",
        "age": "会话时长",
        "idle": "静默",
        "wait": "排队",
        "sort": "排序",
        "take_over": "接管",
        "watch": "查看",
        "agent": "客服",
        "status": "状态",
        "capacity": "容量",
        "load": "当前接待",
        "assigned_today": "今日分配",
        "frt_median": "首响中位数",
        "frt_mean": "首响平均",
        "rate_30s": "30秒应答率",
        "held": "已接待",
        "reassign_to": "转给",
        "reassign": "转接",
        "none_live": "现在没有机器人会话。",
        "none_agents": "还没有客服。",
        "none_assigned": "没有客服正在接待的会话。",
        "today_note": "今日＝店铺时区 {tz} 的今天零点起；首响＝分配后客服第一条消息的用时；"
        "30秒应答率＝30秒内首响的会话 ÷（已回复的 + 超过30秒未回复的）。",
        "transcript": "会话记录",
        "read_only": "只读查看；接管后在客服工作台回复。",
        "back": "返回监控",
        "with_agent": "由 {name} 接待",
        "updated": "更新于",
        "role_shopper": "顾客",
        "role_bot": "机器人",
        "role_agent": "客服",
        "role_system": "系统",
        "role_supervisor": "主管",
        "role_admin": "管理员",
        "choose_agent": "选择客服",
        "flag_low_confidence": "低置信",
        "flag_repeated_fallback": "多次未理解",
        "flag_negative": "负面情绪",
        "flag_vip": "VIP",
        "sort_flags": "标记数",
        "sort_low_confidence": "低置信",
        "sort_repeated_fallback": "未理解",
        "sort_negative": "负面",
        "sort_vip": "VIP",
        "sort_wait": "排队",
        "sort_age": "时长",
        "sort_idle": "静默",
        "state_bot": "机器人",
        "state_queued": "排队中",
        "state_agent": "人工",
        "state_closed": "已结束",
        "status_online": "在线",
        "status_away": "离开",
        "status_offline": "离线",
    },
    "en": {
        "title": "Supervision",
        "live": "Bot conversations",
        "live_note": "No person yet: served by the bot (a message in the last "
        f"{LIVE_MINUTES} minutes) or waiting in the queue",
        "agents": "Agents",
        "assigned": "With agents",
        "customer": "Customer",
        "anonymous": "anonymous visitor",
        "state": "State",
        "flags": "Flags",
        "last_message": "Latest message",
        "age": "Age",
        "idle": "Idle",
        "wait": "Waiting",
        "sort": "Sort",
        "take_over": "Take over",
        "watch": "Watch",
        "agent": "Agent",
        "status": "Status",
        "capacity": "Capacity",
        "load": "Load",
        "assigned_today": "Assigned today",
        "frt_median": "First response (median)",
        "frt_mean": "First response (mean)",
        "rate_30s": "Answered in 30 s",
        "held": "Held",
        "reassign_to": "Move to",
        "reassign": "Reassign",
        "none_live": "No bot conversations right now.",
        "none_agents": "No agents yet.",
        "none_assigned": "No conversation is with an agent.",
        "today_note": "Today = since midnight in the store's time zone ({tz}); first response = "
        "time from assignment to the agent's first message; answered in 30 s = conversations "
        "first answered within 30 s ÷ (answered + unanswered for over 30 s).",
        "transcript": "Transcript",
        "read_only": "Read-only; after taking over, reply from the agent console.",
        "back": "Back to supervision",
        "with_agent": "with {name}",
        "updated": "updated",
        "role_shopper": "Shopper",
        "role_bot": "Bot",
        "role_agent": "Agent",
        "role_system": "System",
        "role_supervisor": "supervisor",
        "role_admin": "admin",
        "choose_agent": "choose an agent",
        "flag_low_confidence": "low confidence",
        "flag_repeated_fallback": "repeated fallback",
        "flag_negative": "negative",
        "flag_vip": "VIP",
        "sort_flags": "flags",
        "sort_low_confidence": "low confidence",
        "sort_repeated_fallback": "fallback",
        "sort_negative": "negative",
        "sort_vip": "VIP",
        "sort_wait": "waiting",
        "sort_age": "age",
        "sort_idle": "idle",
        "state_bot": "bot",
        "state_queued": "queued",
        "state_agent": "agent",
        "state_closed": "closed",
        "status_online": "online",
        "status_away": "away",
        "status_offline": "offline",
    },
}


def _handoff(request: Request) -> HandoffService:
    service: HandoffService = request.app.state.handoff
    return service


def _lang(request: Request) -> str:
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    if asked in LABELS:
        return asked
    accept = request.headers.get("accept-language", "").lower()
    return "en" if accept.startswith("en") else "zh"


def _duration(lang: str) -> Callable[[float | int | None], str]:
    def fmt(seconds: float | int | None) -> str:
        if seconds is None:
            return "—"
        total = round(seconds)
        hours, rest = divmod(total, 3600)
        minutes, secs = divmod(rest, 60)
        if lang == "zh":
            if hours:
                return f"{hours}小时{minutes:02d}分"
            return f"{minutes}分{secs:02d}秒" if minutes else f"{secs}秒"
        if hours:
            return f"{hours}h {minutes:02d}m"
        return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"

    return fmt


def _page(
    request: Request,
    template: str,
    who: SessionView,
    *,
    status: int = 200,
    **context: Any,
) -> Response:
    lang = _lang(request)
    handoff = _handoff(request)
    zone = ZoneInfo(handoff.settings.store_timezone)

    def local(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%H:%M:%S")

    response = render(
        request,
        template,
        who,
        status=status,
        t=LABELS[lang],
        lang=lang,
        dur=_duration(lang),
        local=local,
        tz=handoff.settings.store_timezone,
        now=local(handoff.clock()),
        **context,
    )
    if request.query_params.get("lang") in LABELS:
        response.set_cookie(
            LANG_COOKIE, lang, httponly=True, samesite="lax", path="/console", max_age=365 * 86400
        )
    return response


async def _board(request: Request, sort: str) -> dict[str, Any]:
    handoff = _handoff(request)
    settings, clock = handoff.settings, handoff.clock

    def work(session: Session) -> dict[str, Any]:
        since = clock() - timedelta(minutes=LIVE_MINUTES)
        live = supervision.live_conversations(
            session=session, settings=settings, since=since, clock=clock
        )
        return {
            "live": supervision.sort_live(live, sort),
            "agents": supervision.agent_stats(session, clock=clock, settings=settings),
            "assigned": supervision.assigned_conversations(session=session, clock=clock),
        }

    found: dict[str, Any] = await in_db(work)
    return found


async def _show_board(
    request: Request, who: SessionView, sort: str, *, error: str | None = None, status: int = 200
) -> Response:
    if sort not in supervision.SORTS:
        sort = "flags"
    board = await _board(request, sort)
    fragment = request.headers.get("HX-Request") and error is None
    return _page(
        request,
        "console/supervisor/_board.html" if fragment else "console/supervisor/index.html",
        who,
        status=status,
        sort=sort,
        sorts=supervision.SORTS,
        error=error,
        **board,
    )


@router.get("")
async def supervisor_page(request: Request, who: Supervisor, sort: str = "flags") -> Response:
    return await _show_board(request, who, sort)


@router.get("/c/{conversation_id}")
async def watch(request: Request, who: Supervisor, conversation_id: str) -> Response:
    try:
        watched = await in_db(
            lambda s: supervision.watch(session=s, conversation_id=conversation_id)
        )
    except NotFound:
        return _page(
            request, "console/supervisor/watch.html", who, status=404, watched=None,
            error="No such conversation. 没有这个会话。",
        )  # fmt: skip
    fragment = request.headers.get("HX-Request")
    return _page(
        request,
        "console/supervisor/_transcript.html" if fragment else "console/supervisor/watch.html",
        who,
        watched=watched,
    )


@router.post("/c/{conversation_id}/take-over")
async def take_over(
    request: Request,
    who: Supervisor,
    conversation_id: str,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(who, csrf_token)
    try:
        await _handoff(request).claim(conversation_id, who.staff.id)
    except KefuError as exc:
        return await _show_board(request, who, "flags", error=str(exc), status=409)
    return RedirectResponse(f"/console/agent/c/{conversation_id}", status_code=303)


@router.post("/c/{conversation_id}/reassign")
async def reassign(
    request: Request,
    who: Supervisor,
    conversation_id: str,
    to_agent: Annotated[int, Form()],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(who, csrf_token)
    handoff = _handoff(request)

    def work(session: Session) -> tuple[handoff_service.Reassignment, Any]:
        moved = handoff_service.reassign(
            session=session,
            conversation_id=conversation_id,
            to_agent_id=to_agent,
            settings=handoff.settings,
            clock=handoff.clock,
        )
        conversation = session.get(Conversation, conversation_id)
        language = conversation.language if conversation else "zh"
        notice = handoff_service.add_system_message(
            session=session,
            conversation_id=conversation_id,
            text=system_message("handoff_agent_joined", language, name=moved.assignment.agent_name),
            clock=handoff.clock,
        )
        return moved, notice

    try:
        moved, notice = await in_db(work)
    except KefuError as exc:
        return await _show_board(request, who, "flags", error=str(exc), status=409)
    new = moved.assignment
    # What a claim announces, plus a "released" to the agent who had it.
    handoff.hub.publish(conversation_id, {"type": "message", "message": notice.to_dict()})
    handoff.hub.publish(
        conversation_id, {"type": "handoff", "state": "agent", "agent": {"name": new.agent_name}}
    )
    handoff.hub.publish(
        agent_key(new.agent_id),
        {"type": "assigned", "conversation_id": conversation_id, "handoff_id": new.handoff_id},
    )
    handoff.hub.publish(
        agent_key(moved.from_agent_id),
        {"type": "released", "conversation_id": conversation_id, "state": "agent"},
    )
    handoff.hub.publish(
        agent_key(new.agent_id),
        {"type": "message", "conversation_id": conversation_id, "message": notice.to_dict()},
    )
    await handoff.publish_queue()  # every console watching the floor refreshes
    return RedirectResponse("/console/supervisor", status_code=303)


def install(app: FastAPI) -> None:
    app.include_router(router)
