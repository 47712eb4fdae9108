"""``/console/agent``: the agent console pages — the inbox (queue, my conversations, tickets),
one conversation (transcript with the bot's understanding, handoff summary, customer
sidebar, reply box with canned responses, notes, tags, close, hand-back) and the canned
response library (话术库), which supervisors edit.

Server-rendered; live parts are driven by ``/static/agent-console.js`` over the agent
WebSocket (``/api/agent/ws``): it refreshes the inbox fragments through htmx and appends
messages with ``textContent``. Writes from forms carry the session's CSRF token; the reply
box and typing go through the agent JSON API (``X-CSRF-Token``). Queries live in
``bot.services`` (handoff, agent_desk, canned, profile, consent, tickets).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from api.db import in_db
from api.handoff import HandoffService
from api.routes.console import Forbidden, check_csrf, render, require_role
from bot.errors import KefuError, NotFound
from bot.labels import codes, label
from bot.models.handoff import DISPOSITIONS
from bot.services import agent_desk, canned, consent, tickets
from bot.services import handoff as handoff_service
from bot.services.conversations import history
from bot.services.profile import customer_360
from bot.services.staff import SessionView

router = APIRouter(prefix="/console/agent", include_in_schema=False)

DESK_ROLES = ("agent", "supervisor")
DeskStaff = Annotated[SessionView, Depends(require_role(*DESK_ROLES))]
LANG_COOKIE = "kefu_console_lang"
TRANSCRIPT_LIMIT = 5000

# The console's own words, (zh, en). Data (names, messages, notes) is never looked up here.
LABELS: dict[str, tuple[str, str]] = {
    "inbox": ("收件箱", "Inbox"),
    "queue": ("排队中", "Queue"),
    "mine": ("我的会话", "My conversations"),
    "tickets": ("非服务时间留言", "Tickets left off-hours"),
    "live": ("机器人正在服务", "With the bot now"),
    "waited": ("已等待", "Waited"),
    "priority": ("优先级", "Priority"),
    "reason": ("转人工原因", "Handoff reason"),
    "customer": ("顾客", "Customer"),
    "anonymous": ("匿名访客", "Anonymous visitor"),
    "last_message": ("最后一条消息", "Last message"),
    "open": ("打开", "Open"),
    "none": ("暂无", "None"),
    "claim": ("接入", "Take over"),
    "status": ("我的状态", "My status"),
    "online": ("在线", "Online"),
    "away": ("离开", "Away"),
    "offline": ("离线", "Offline"),
    "set_status": ("更新状态", "Set status"),
    "load": ("当前会话", "Chats now"),
    "phone": ("回电号码", "Callback number"),
    "note": ("备注", "Note"),
    "close_ticket": ("处理完毕", "Done"),
    "created": ("创建于", "Created"),
    "transcript": ("聊天记录", "Transcript"),
    "summary": ("转接摘要", "Handoff summary"),
    "intents": ("识别到的意图", "Intents so far"),
    "order": ("相关订单", "Order concerned"),
    "mentioned": ("顾客提到", "mentioned"),
    "latest": ("最近订单", "latest order"),
    "tried": ("机器人已尝试", "What the bot tried"),
    "failed_turns": ("失败的回合", "Failed turns"),
    "state": ("状态", "State"),
    "reply": ("回复", "Reply"),
    "send": ("发送", "Send"),
    "reply_placeholder": ("输入回复… 输入 / 打开话术库", "Type a reply… / opens canned responses"),
    "canned": ("话术库", "Canned responses"),
    "canned_search": ("搜索快捷码或内容", "Search shortcode or text"),
    "fills": ("自动填充", "Fills"),
    "notes": ("内部备注（顾客不可见）", "Private notes (never shown to the shopper)"),
    "add_note": ("添加备注", "Add note"),
    "tags": ("标签", "Tags"),
    "conversation_tags": ("会话标签", "Conversation tags"),
    "customer_tags": ("顾客标签", "Customer tags"),
    "add_tag": ("添加", "Add"),
    "remove": ("移除", "Remove"),
    "close": ("结束会话", "Close"),
    "disposition": ("处理结果", "Disposition"),
    "ask_csat": ("发送满意度调查", "Send the satisfaction question"),
    "handback": ("交还机器人", "Hand back to the bot"),
    "profile": ("顾客资料", "Customer profile"),
    "membership": ("会员等级", "Membership"),
    "points": ("积分", "Points"),
    "lifetime_value": ("累计消费", "Lifetime value"),
    "satisfaction": ("满意度", "Satisfaction"),
    "orders": ("订单", "Orders"),
    "shipment": ("物流", "Shipment"),
    "past_conversations": ("历史会话", "Past conversations"),
    "consent": ("营销授权", "Marketing consent"),
    "consent_yes": ("已同意", "given"),
    "consent_no": ("未同意", "not given"),
    "open_issues": ("未结事项", "Open issues"),
    "shortcuts": (
        "快捷键：Ctrl+Enter 发送 · Alt+N 下一个会话 · / 或 Ctrl+K 话术库 · Esc 关闭",
        "Keys: Ctrl+Enter send · Alt+N next conversation · / or Ctrl+K canned responses · Esc close",
    ),
    "not_yours": ("这个会话不在你名下，接入后才能回复。", "Not yours: take it over to reply."),
    "shortcode": ("快捷码", "Shortcode"),
    "language": ("语言", "Language"),
    "title": ("标题", "Title"),
    "body": ("内容", "Text"),
    "save": ("保存", "Save"),
    "delete": ("删除", "Delete"),
    "new_canned": ("新增话术", "New canned response"),
    "placeholders_help": (
        "可用占位符：{name} 顾客称呼，{order_no} 订单号，{delay_reason} 延误原因，{agent_name} 客服姓名",
        "Placeholders: {name} customer name, {order_no} order number, {delay_reason} delay "
        "reason, {agent_name} agent name",
    ),
    "canned_readonly": ("话术库由主管维护。", "Supervisors edit the library."),
    "updated": ("更新于", "Updated"),
    "back_to_inbox": ("返回收件箱", "Back to the inbox"),
    "vip": ("VIP", "VIP"),
    "normal": ("普通", "Normal"),
    "bot": ("机器人", "Bot"),
    "agent": ("人工", "Agent"),
    "shopper": ("顾客", "Shopper"),
    "system": ("系统", "System"),
    "live_off": ("实时连接已断开，正在重连…", "Live updates lost; reconnecting…"),
    "typing_sent": ("对方可以看到“正在输入”", "The shopper sees 'typing'"),
}


def _lang(request: Request) -> str:
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return "en" if asked == "en" else "zh"


def _t(lang: str) -> Callable[[str], str]:
    index = 1 if lang == "en" else 0

    def t(key: str) -> str:
        pair = LABELS.get(key)
        return pair[index] if pair else key

    return t


def _reason(lang: str, reason: str | None) -> str:
    if not reason:
        return ""
    base = reason.split(":", 1)[0]
    if base not in codes("handoff_reason"):
        return reason
    text = label("handoff_reason", base, lang)
    return f"{text} ({reason})" if base == "turn_failed" or ":" in reason else text


def _page(request: Request, template: str, who: SessionView, **context: Any) -> Response:
    lang = _lang(request)
    response = render(
        request,
        template,
        who,
        lang=lang,
        t=_t(lang),
        reason_label=lambda r: _reason(lang, r),
        dispositions=[(d, label("disposition", d, lang)) for d in DISPOSITIONS],
        code_label=lambda kind, code: label(kind, code, lang) if code else "",
        **context,
    )
    if request.query_params.get("lang") in ("zh", "en"):
        response.set_cookie(LANG_COOKIE, lang, samesite="lax", httponly=True, path="/console")
    return response


def _handoff(request: Request) -> HandoffService:
    handoff: HandoffService = request.app.state.handoff
    return handoff


def _back(conversation_id: str, error: str | None = None) -> RedirectResponse:
    target = f"/console/agent/c/{quote(conversation_id)}"
    query = f"?{urlencode({'error': error[:200]})}" if error else ""
    return RedirectResponse(target + query, status_code=303)


async def _then_back(conversation_id: str, action: Awaitable[Any]) -> RedirectResponse:
    """A conversation form's action, then the conversation again (with the refusal, if any)."""
    try:
        await action
    except KefuError as exc:
        return _back(conversation_id, str(exc))
    return _back(conversation_id)


# --- the inbox ----------------------------------------------------------------------------


def _inbox(session: Session, who: SessionView, handoff: HandoffService) -> dict[str, Any]:
    mine = []
    for cid in handoff_service.agent_conversations(session=session, agent_id=who.staff.id):
        detail = handoff_service.conversation_detail(
            session=session, conversation_id=cid, settings=handoff.settings, clock=handoff.clock
        )
        last = next(
            (m for m in reversed(detail["messages"]) if m["role"] in ("shopper", "agent")), None
        )
        mine.append({**detail, "last": last})
    return {
        "agent": handoff_service.agent_view(
            session=session, agent_id=who.staff.id, settings=handoff.settings
        ),
        "queue": handoff_service.queue(session=session, clock=handoff.clock),
        "mine": mine,
        "tickets": tickets.list_tickets(session=session, state="open"),
    }


@router.get("")
async def inbox(request: Request, who: DeskStaff) -> Response:
    handoff = _handoff(request)
    found = await in_db(lambda s: _inbox(s, who, handoff))
    template = (
        "console/agent/inbox_lists.html"
        if request.headers.get("HX-Request")
        else "console/agent/inbox.html"
    )
    return _page(request, template, who, **found)


@router.post("/status")
async def set_status(
    request: Request,
    who: DeskStaff,
    status: Annotated[str, Form(max_length=16)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(who, csrf_token)
    await _handoff(request).set_status(who.staff.id, status, None)
    return RedirectResponse("/console/agent", status_code=303)


@router.post("/tickets/{ticket_id}/close")
async def close_ticket(
    request: Request,
    who: DeskStaff,
    ticket_id: int,
    resolution: Annotated[str, Form(max_length=500)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(who, csrf_token)
    ticket = await in_db(
        lambda s: tickets.close_ticket(
            session=s, ticket_id=ticket_id, agent_id=who.staff.id, resolution=resolution
        )
    )
    _handoff(request).hub.publish("agents", {"type": "ticket", "ticket_id": ticket.id})
    return RedirectResponse("/console/agent", status_code=303)


# --- one conversation ---------------------------------------------------------------------


def _conversation(
    session: Session, conversation_id: str, who: SessionView, handoff: HandoffService
) -> dict[str, Any]:
    detail = handoff_service.conversation_detail(
        session=session,
        conversation_id=conversation_id,
        settings=handoff.settings,
        clock=handoff.clock,
    )
    # The whole transcript, from the first bot turn (the detail holds the latest 200).
    detail["messages"] = [
        m.to_dict()
        for m in history(session=session, conversation_id=conversation_id, limit=TRANSCRIPT_LIMIT)
    ]
    nlu = agent_desk.turn_understanding(session=session, conversation_id=conversation_id)
    profile = None
    marketing = None
    if detail["customer"]:
        profile = customer_360(session=session, external_id=detail["customer"]["id"])
        marketing = consent.marketing_state(
            session=session, customer_id=profile.id, version=handoff.settings.consent_version
        )
    mine = handoff_service.agent_conversations(session=session, agent_id=who.staff.id)
    return {
        "c": detail,
        "nlu": nlu,
        "summary": agent_desk.summary(session=session, conversation_id=conversation_id),
        "profile": profile,
        "marketing": marketing,
        "notes": agent_desk.notes(session=session, conversation_id=conversation_id),
        "conversation_tags": agent_desk.conversation_tags(
            session=session, conversation_id=conversation_id
        ),
        "owner": handoff_service.owner(session=session, conversation_id=conversation_id),
        "mine": mine,
    }


@router.get("/c/{conversation_id}")
async def conversation_page(request: Request, who: DeskStaff, conversation_id: str) -> Response:
    handoff = _handoff(request)
    try:
        found = await in_db(lambda s: _conversation(s, conversation_id, who, handoff))
    except NotFound:
        found = None
    if found is None:
        listed = await in_db(lambda s: _inbox(s, who, handoff))
        missing = "没有这个会话。" if _lang(request) == "zh" else "No such conversation."
        response = _page(request, "console/agent/inbox.html", who, error=missing, **listed)
        response.status_code = 404
        return response
    error = request.query_params.get("error")
    return _page(
        request,
        "console/agent/conversation.html",
        who,
        error=error[:200] if error else None,
        **found,
    )


@router.get("/c/{conversation_id}/canned")
async def canned_for_conversation(
    request: Request,
    who: DeskStaff,
    conversation_id: str,
    q: Annotated[str, Query(max_length=100)] = "",
) -> JSONResponse:
    """Canned responses matching ``q``, rendered for this conversation (placeholders
    filled, missing ones as markers), for the reply box's picker."""
    language = request.query_params.get("language")

    def work(session: Session) -> list[dict[str, Any]]:
        conversation_language = handoff_service.conversation_detail(
            session=session,
            conversation_id=conversation_id,
            settings=_handoff(request).settings,
        )["language"]
        found = canned.search(session=session, query=q, language=language or conversation_language)
        results = []
        cache: dict[str, dict[str, str | None]] = {}
        for item in found:
            if item.language not in cache:
                cache[item.language] = agent_desk.placeholder_values(
                    session=session,
                    conversation_id=conversation_id,
                    agent_id=who.staff.id,
                    language=item.language,
                )
            rendered = canned.render(item.body, cache[item.language], item.language)
            results.append(
                {
                    "id": item.id,
                    "shortcode": item.shortcode,
                    "language": item.language,
                    "title": item.title,
                    "text": rendered.text,
                    "missing": list(rendered.missing),
                }
            )
        return results

    try:
        results = await in_db(work)
    except NotFound:
        return JSONResponse({"error": {"code": "not_found"}}, status_code=404)
    return JSONResponse({"results": results})


@router.post("/c/{conversation_id}/claim")
async def claim(
    request: Request,
    who: DeskStaff,
    conversation_id: str,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(who, csrf_token)
    return await _then_back(conversation_id, _handoff(request).claim(conversation_id, who.staff.id))


@router.post("/c/{conversation_id}/reply")
async def reply(
    request: Request,
    who: DeskStaff,
    conversation_id: str,
    text: Annotated[str, Form(max_length=handoff_service.MAX_AGENT_MESSAGE)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """The reply box without JavaScript (the script sends through the agent API)."""
    check_csrf(who, csrf_token)
    return await _then_back(
        conversation_id, _handoff(request).send(conversation_id, who.staff.id, text)
    )


@router.post("/c/{conversation_id}/notes")
async def add_note(
    request: Request,
    who: DeskStaff,
    conversation_id: str,
    text: Annotated[str, Form(max_length=agent_desk.MAX_NOTE)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(who, csrf_token)
    return await _then_back(
        conversation_id,
        in_db(
            lambda s: agent_desk.add_note(
                session=s, conversation_id=conversation_id, staff_id=who.staff.id, text=text
            )
        ),
    )


@router.post("/c/{conversation_id}/tags")
async def add_tag(
    request: Request,
    who: DeskStaff,
    conversation_id: str,
    tag: Annotated[str, Form(max_length=64)],
    scope: Annotated[str, Form(max_length=16)] = "conversation",
    remove: Annotated[str, Form(max_length=8)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(who, csrf_token)

    def work(session: Session) -> None:
        if scope == "customer":
            if remove:
                agent_desk.untag_customer(session=session, conversation_id=conversation_id, tag=tag)
            else:
                agent_desk.tag_customer(session=session, conversation_id=conversation_id, tag=tag)
        elif remove:
            agent_desk.untag_conversation(session=session, conversation_id=conversation_id, tag=tag)
        else:
            agent_desk.tag_conversation(
                session=session, conversation_id=conversation_id, tag=tag, staff_id=who.staff.id
            )

    return await _then_back(conversation_id, in_db(work))


@router.post("/c/{conversation_id}/handback")
async def hand_back(
    request: Request,
    who: DeskStaff,
    conversation_id: str,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(who, csrf_token)
    return await _then_back(
        conversation_id, _handoff(request).hand_back(conversation_id, who.staff.id)
    )


@router.post("/c/{conversation_id}/close")
async def close(
    request: Request,
    who: DeskStaff,
    conversation_id: str,
    disposition: Annotated[str, Form(max_length=32)],
    ask_csat: Annotated[str, Form(max_length=8)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(who, csrf_token)
    handoff = _handoff(request)
    try:
        handoff_id = await in_db(
            lambda s: agent_desk.live_handoff_id(session=s, conversation_id=conversation_id)
        )
        await handoff.close(conversation_id, who.staff.id, disposition)
    except KefuError as exc:
        return _back(conversation_id, str(exc))
    if ask_csat:
        message = await in_db(
            lambda s: agent_desk.ask_satisfaction(
                session=s,
                conversation_id=conversation_id,
                agent_id=who.staff.id,
                handoff_id=handoff_id,
                clock=handoff.clock,
            )
        )
        handoff.hub.publish(conversation_id, {"type": "message", "message": message})
    return _back(conversation_id)


# --- the canned response library ------------------------------------------------------------


def _supervisor(who: SessionView) -> None:
    if who.staff.role != "supervisor":
        raise Forbidden


async def _library(
    request: Request, who: SessionView, *, error: str | None = None, status: int = 200
) -> Response:
    q = request.query_params.get("q", "")[:100]
    found = await in_db(
        lambda s: (
            canned.search(session=s, query=q, limit=500) if q else canned.list_responses(session=s)
        )
    )
    response = _page(
        request,
        "console/agent/canned.html",
        who,
        responses=found,
        q=q,
        can_edit=who.staff.role == "supervisor",
        languages=("zh", "en"),
        error=error,
    )
    response.status_code = status
    return response


@router.get("/canned")
async def canned_library(request: Request, who: DeskStaff) -> Response:
    return await _library(request, who)


@router.post("/canned")
async def canned_save(
    request: Request,
    who: DeskStaff,
    shortcode: Annotated[str, Form(max_length=40)],
    language: Annotated[str, Form(max_length=8)],
    title: Annotated[str, Form(max_length=canned.MAX_TITLE)],
    body: Annotated[str, Form(max_length=canned.MAX_BODY)],
    canned_id: Annotated[int | None, Form()] = None,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    _supervisor(who)
    check_csrf(who, csrf_token)
    try:
        await in_db(
            lambda s: canned.save(
                session=s,
                shortcode=shortcode,
                language=language,
                title=title,
                body=body,
                staff_id=who.staff.id,
                canned_id=canned_id,
            )
        )
    except KefuError as exc:
        return await _library(request, who, error=str(exc), status=400)
    return RedirectResponse("/console/agent/canned", status_code=303)


@router.post("/canned/{canned_id}/delete")
async def canned_delete(
    request: Request,
    who: DeskStaff,
    canned_id: int,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    _supervisor(who)
    check_csrf(who, csrf_token)
    try:
        await in_db(lambda s: canned.remove(session=s, canned_id=canned_id))
    except NotFound:
        return await _library(request, who, error="No such canned response.", status=404)
    return RedirectResponse("/console/agent/canned", status_code=303)


def install(app: FastAPI) -> None:
    app.include_router(router)
