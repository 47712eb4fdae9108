"""The agent API: the queue, claiming, talking to the shopper, hand-back and close, status.

JSON under ``/api/agent``, for the agent console (its own issue) and for tests. It is
authenticated by the console's staff session cookie (``kefu_staff``, from
``POST /console/login``); roles agent, supervisor and admin may use it. Unsafe methods
(POST, PUT) need the session's CSRF token in an ``X-CSRF-Token`` header — a header a
cross-site form cannot send; ``GET /api/agent/me`` returns it. Errors are
``{"error": {"code", "message"}}``: 401 not logged in, 403 wrong role or CSRF token, 404,
409 ``conflict`` (someone else got there first, or not your conversation), 422.

- ``GET  /api/agent/me`` → ``{"agent": {id, name, status, capacity, load}, "csrf_token"}``
- ``PUT  /api/agent/status`` ``{"status": "online"|"away"|"offline", "capacity"?}`` →
  ``{"agent": {...}}``. Online agents get waiting conversations (least loaded first, up to
  their capacity); away keeps current ones; offline returns them to the queue.
- ``GET  /api/agent/queue`` → ``{"queue": [{conversation_id, position, reason, vip,
  customer, waited_seconds, last_message, ...}]}`` (VIPs and long waits first)
- ``GET  /api/agent/live?minutes=30&state=bot|queued|agent`` → ``{"conversations": [{
  conversation_id, state, needs_human, flag_reason, last_message, customer, ...}]}``:
  recently active chats, latest first — the bot's too, to supervise and take over
- ``GET  /api/agent/conversations`` → ``{"conversations": [detail, ...]}`` (the caller's)
- ``GET  /api/agent/conversations/{id}`` → detail: customer, state, the whole transcript
  (the bot's part too), handoff, tickets
- ``POST /api/agent/conversations/{id}/claim`` → take it from the queue, or take over from
  the bot (the bot falls silent at once)
- ``POST /api/agent/conversations/{id}/messages`` ``{"text"}`` → ``{"message": {...}}``
- ``POST /api/agent/conversations/{id}/typing`` ``{"on": true|false}`` → the shopper sees
  ``{"type": "typing", "on"}`` (the owner only; sending a message turns it off)
- ``POST /api/agent/conversations/{id}/handback`` → back to the bot, which asks the shopper
  for a rating
- ``POST /api/agent/conversations/{id}/close`` ``{"disposition": "resolved" | "unresolved" |
  "follow_up" | "spam" | "duplicate"}``
- ``GET  /api/agent/tickets?state=open|done`` → ``{"tickets": [...]}``;
  ``POST /api/agent/tickets/{id}/close`` ``{"resolution"?}``

WebSocket ``/api/agent/ws`` (same cookie; Origin checked like the shopper's socket):
server → ``{"type": "hello", "agent", "queue", "conversations": [ids]}``, then
``{"type": "queue", "queue": [...]}`` whenever the queue changes,
``{"type": "assigned", "conversation_id", "handoff_id"}`` when one is given to you,
``{"type": "message", "conversation_id", "message"}`` for every message in your
conversations (the shopper's and yours), ``{"type": "released", "conversation_id",
"state"}`` when one leaves you (handed back, closed, returned to the queue), and
``{"type": "ticket", "ticket_id"}`` for a new or completed ticket. Client → ``{"type":
"ping"}`` → ``{"type": "pong"}``. When an agent's last socket closes and none opens again
within ``KEFU_AGENT_OFFLINE_GRACE_SECONDS`` (60), the agent is set offline and their
conversations return to the queue.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, WebSocket
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.websockets import WebSocketDisconnect

from api.db import in_db
from api.events import EventHub
from api.handoff import AGENTS, HandoffService, agent_key
from api.routes.console import SESSION_COOKIE, LoginRequired, csrf_matches, current_staff
from bot.errors import KefuError
from bot.services import handoff as service
from bot.services import staff as staff_service
from bot.services import tickets
from bot.services.handoff import HandoffConflict, NotAnAgent
from bot.services.staff import SessionView

router = APIRouter(prefix="/api/agent", tags=["agent"])

AGENT_ROLES = ("agent", "supervisor", "admin")
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


class NotAuthenticated(KefuError):
    code = "not_authenticated"


class Forbidden(KefuError):
    code = "forbidden"


def _allowed(who: SessionView) -> SessionView:
    if who.staff.role not in AGENT_ROLES:
        raise Forbidden("the agent API is for agents, supervisors and admins")
    return who


async def current_agent(
    request: Request, x_csrf_token: Annotated[str | None, Header()] = None
) -> SessionView:
    """The logged-in staff member, if they may act as an agent; unsafe methods must carry
    the session's CSRF token."""
    try:
        who = await current_staff(request)
    except LoginRequired as exc:
        raise NotAuthenticated("log in at /console/login") from exc
    _allowed(who)
    if request.method in UNSAFE and not csrf_matches(who, x_csrf_token):
        raise Forbidden("missing or wrong X-CSRF-Token header")
    return who


Agent = Annotated[SessionView, Depends(current_agent)]


def get_handoff(request: Request) -> HandoffService:
    handoff: HandoffService = request.app.state.handoff
    return handoff


HandoffDep = Annotated[HandoffService, Depends(get_handoff)]


class StatusIn(BaseModel):
    status: Literal["online", "away", "offline"]
    capacity: int | None = Field(default=None, ge=0, le=50)


class MessageIn(BaseModel):
    text: str = Field(min_length=1, max_length=service.MAX_AGENT_MESSAGE)


class CloseIn(BaseModel):
    disposition: str = Field(max_length=32)


class TicketCloseIn(BaseModel):
    resolution: str | None = Field(default=None, max_length=500)


async def _detail(handoff: HandoffService, conversation_id: str) -> dict[str, Any]:
    detail: dict[str, Any] = await in_db(
        lambda s: service.conversation_detail(
            session=s, conversation_id=conversation_id, settings=handoff.settings
        )
    )
    return detail


@router.get("/me")
async def me(who: Agent, handoff: HandoffDep) -> dict[str, Any]:
    view = await in_db(
        lambda s: service.agent_view(session=s, agent_id=who.staff.id, settings=handoff.settings)
    )
    return {"agent": view.to_dict(), "csrf_token": who.csrf_token}


@router.put("/status")
async def set_status(body: StatusIn, who: Agent, handoff: HandoffDep) -> dict[str, Any]:
    view = await handoff.set_status(who.staff.id, body.status, body.capacity)
    return {"agent": view.to_dict()}


@router.get("/queue")
async def get_queue(who: Agent) -> dict[str, Any]:
    entries = await in_db(lambda s: service.queue(session=s))
    return {"queue": [e.to_dict() for e in entries]}


@router.get("/live")
async def live(
    who: Agent,
    handoff: HandoffDep,
    minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 30,
    state: Annotated[Literal["bot", "queued", "agent"] | None, Query()] = None,
) -> dict[str, Any]:
    """Conversations active in the last ``minutes`` (the bot's too: any can be taken over)."""
    since = handoff.clock() - timedelta(minutes=minutes)
    states = (state,) if state else ("bot", "queued", "agent")
    found = await in_db(lambda s: service.live_conversations(session=s, states=states, since=since))
    return {"conversations": found}


@router.get("/conversations")
async def my_conversations(who: Agent, handoff: HandoffDep) -> dict[str, Any]:
    ids: list[str] = await in_db(
        lambda s: service.agent_conversations(session=s, agent_id=who.staff.id)
    )
    return {"conversations": [await _detail(handoff, cid) for cid in ids]}


@router.get("/conversations/{conversation_id}")
async def conversation(conversation_id: str, who: Agent, handoff: HandoffDep) -> dict[str, Any]:
    return await _detail(handoff, conversation_id)


@router.post("/conversations/{conversation_id}/claim")
async def claim(conversation_id: str, who: Agent, handoff: HandoffDep) -> dict[str, Any]:
    assignment = await handoff.claim(conversation_id, who.staff.id)
    return {"conversation_id": conversation_id, "handoff_id": assignment.handoff_id}


@router.post("/conversations/{conversation_id}/messages")
async def send(
    conversation_id: str, body: MessageIn, who: Agent, handoff: HandoffDep
) -> dict[str, Any]:
    message = await handoff.send(conversation_id, who.staff.id, body.text)
    handoff.hub.publish(conversation_id, {"type": "typing", "on": False})  # the text is there
    return {"message": message.to_dict()}


class TypingIn(BaseModel):
    on: bool = True


@router.post("/conversations/{conversation_id}/typing")
async def typing(
    conversation_id: str, body: TypingIn, who: Agent, handoff: HandoffDep
) -> dict[str, Any]:
    """The agent is typing (or stopped): the shopper's widget shows it. Only the owner's
    typing is passed on; the console sends it at most every few seconds."""
    owner = await in_db(lambda s: service.owner(session=s, conversation_id=conversation_id))
    if owner != who.staff.id:
        raise HandoffConflict("this conversation is not yours")
    handoff.hub.publish(conversation_id, {"type": "typing", "on": body.on})
    return {"conversation_id": conversation_id, "on": body.on}


@router.post("/conversations/{conversation_id}/handback")
async def hand_back(conversation_id: str, who: Agent, handoff: HandoffDep) -> dict[str, Any]:
    await handoff.hand_back(conversation_id, who.staff.id)
    return {"conversation_id": conversation_id, "state": "bot"}


@router.post("/conversations/{conversation_id}/close")
async def close(
    conversation_id: str, body: CloseIn, who: Agent, handoff: HandoffDep
) -> dict[str, Any]:
    await handoff.close(conversation_id, who.staff.id, body.disposition)
    return {"conversation_id": conversation_id, "state": "closed"}


@router.get("/tickets")
async def list_tickets(
    who: Agent, state: Annotated[Literal["open", "done"] | None, Query()] = "open"
) -> dict[str, Any]:
    found = await in_db(lambda s: tickets.list_tickets(session=s, state=state))
    return {"tickets": [t.to_dict() for t in found]}


@router.post("/tickets/{ticket_id}/close")
async def close_ticket(
    ticket_id: int, body: TicketCloseIn, who: Agent, handoff: HandoffDep
) -> dict[str, Any]:
    ticket = await in_db(
        lambda s: tickets.close_ticket(
            session=s, ticket_id=ticket_id, agent_id=who.staff.id, resolution=body.resolution
        )
    )
    handoff.hub.publish(AGENTS, {"type": "ticket", "ticket_id": ticket.id})
    return {"ticket": ticket.to_dict()}


@router.websocket("/ws")
async def agent_socket(websocket: WebSocket) -> None:
    handoff: HandoffService = websocket.app.state.handoff
    hub: EventHub = handoff.hub
    origin = websocket.headers.get("origin")
    if origin is not None and origin not in handoff.settings.allowed_origins:
        await websocket.close(code=1008)
        return
    token = websocket.cookies.get(SESSION_COOKIE)
    who: SessionView | None = (
        await in_db(lambda s: staff_service.session_for(session=s, token=token)) if token else None
    )
    if who is None or who.staff.role not in AGENT_ROLES:
        await websocket.close(code=4401)
        return
    await websocket.accept()
    agent_id = who.staff.id
    keys = (AGENTS, agent_key(agent_id))
    queues = [(key, hub.subscribe(key)) for key in keys]
    handoff.socket_opened(agent_id)

    async def pump(events: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            await websocket.send_json(await events.get())

    pumps: list[asyncio.Task[None]] = []
    try:

        def snapshot(s: Session) -> dict[str, Any]:
            return {
                "type": "hello",
                "agent": service.agent_view(
                    session=s, agent_id=agent_id, settings=handoff.settings
                ).to_dict(),
                "queue": [e.to_dict() for e in service.queue(session=s)],
                "conversations": service.agent_conversations(session=s, agent_id=agent_id),
            }

        await websocket.send_json(await in_db(snapshot))
        pumps = [asyncio.create_task(pump(events)) for _, events in queues]
        while True:
            raw = await websocket.receive_text()
            try:
                frame = json.loads(raw)
            except ValueError:
                frame = None
            if isinstance(frame, dict) and frame.get("type") == "ping":
                await websocket.send_json({"type": "pong"})
            else:
                await websocket.send_json(
                    {"type": "error", "code": "unknown_frame", "message": "only ping is read"}
                )
    except WebSocketDisconnect:
        pass
    finally:
        for task in pumps:
            task.cancel()
        for key, events in queues:
            hub.unsubscribe(key, events)
        handoff.socket_closed(agent_id)


def _error(status: int) -> Callable[[Request, Exception], Any]:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, KefuError)
        return JSONResponse(
            {"error": {"code": exc.code, "message": str(exc) or exc.code}}, status_code=status
        )

    return handler


def install(app: FastAPI) -> None:
    app.add_exception_handler(NotAuthenticated, _error(401))
    app.add_exception_handler(Forbidden, _error(403))
    app.add_exception_handler(NotAnAgent, _error(403))
    app.add_exception_handler(HandoffConflict, _error(409))
    app.include_router(router)
