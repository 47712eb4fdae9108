"""Shopper chat over WebSocket, and over plain HTTP for clients that cannot hold a socket.

WebSocket protocol (JSON text frames):

- client → ``{"type": "hello", "visitor_token"?, "customer_token"?, "language"?, "page"?,
  "after_id"?}`` first, within 10 s;
  server → ``{"type": "welcome", "visitor_token", "conversation_id", "language", "customer",
  "history"}``.
- client → ``{"type": "message", "client_id", "text", "payload"?}``;
  server → ``{"type": "ack", "client_id", "id", "duplicate"}`` once it is stored, then
  ``{"type": "typing", "on"}`` and ``{"type": "message", "message": {...}}`` as replies come.
- client → ``{"type": "history", "after_id"}`` → ``{"type": "history", "messages": [...]}``.
- errors → ``{"type": "error", "code", "message", "client_id"?}``; the socket stays open.

Human handoff (api/handoff.py). The welcome frame carries ``"handoff": {...}``, the current
state in the same shape as the event below, so a reloaded widget shows it.

- server → ``{"type": "handoff", "state": "queued", "position": N, "eta_seconds": S}``:
  waiting for a person, N-th in line (1 = next), about S seconds (from recent handling
  times); sent again whenever the line moves. Offer a "cancel" button.
- server → ``{"type": "handoff", "state": "agent", "agent": {"name": "王芳"}}``: a person
  has joined. Their messages arrive as ``{"type": "message", "message": {"role": "agent",
  "author": "王芳", ...}}``; the bot says nothing until the hand-back.
- server → ``{"type": "handoff", "state": "bot"}``: back with the bot (cancelled, handed
  back, or a callback number was left). After a hand-back the bot asks for a 1-5 rating
  with buttons: send the pressed button's ``payload`` as usual.
- server → ``{"type": "handoff", "state": "offline", "ticket_id": N}``: nobody can answer
  now (outside service hours, or no agent online). Offer a form for a callback number and a
  note; a number typed as a normal message is taken too.
- server → ``{"type": "handoff", "state": "closed"}``: an agent ended the chat. Writing
  again reopens it with the bot.
- Gateway notices (waiting, joined, back to the bot…) are messages with ``"role": "system"``.
- Marketing consent (a logged-in shopper): the welcome frame carries ``"consent":
  {"marketing", "needs_renewal", "current_version", "consent"}`` (null when anonymous);
  client → ``{"type": "consent", "marketing": bool}`` → ``{"type": "consent", ...}`` the
  same shape, recorded at once with source ``widget`` (an ``error`` when not logged in).
- client → ``{"type": "handoff_cancel"}``: stop waiting, back to the bot (an ``error`` with
  code ``not_queued`` if not waiting).
- client → ``{"type": "ticket", "phone", "note"?}``: leave a callback number →
  ``{"type": "ticket", "ticket_id"}``.

HTTP equivalents (``Authorization: Bearer <visitor token>``): ``POST /api/chat/handoff/cancel``
→ ``{"cancelled": bool, "handoff": {...}}``; ``POST /api/chat/ticket`` with
``{"phone", "note"?}`` → ``{"ticket_id", "handoff": {...}}``; ``POST /api/chat/session`` and
``POST /api/chat/messages`` answer ``"handoff"`` like the welcome frame (the notices and
agent messages are in ``GET /api/chat/messages``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError
from starlette.requests import HTTPConnection

from api.chat import ChatService
from api.errors import STORAGE_UNAVAILABLE, error_body
from api.events import EventHub
from api.handoff import HandoffService
from bot.errors import InvalidInput, InvalidToken, KefuError, RateLimited
from bot.settings import Settings

logger = logging.getLogger("kefu.chat")
router = APIRouter(prefix="/api/chat", tags=["chat"])

HELLO_TIMEOUT = 10.0
CLOSE_RATE_LIMITED = 4429
HTTP_REPLY_WAIT_EXTRA = 2.0


def get_chat(request: Request) -> ChatService:
    chat: ChatService = request.app.state.chat
    return chat


ChatDep = Annotated[ChatService, Depends(get_chat)]


def get_handoff(request: HTTPConnection) -> HandoffService:
    handoff: HandoffService = request.app.state.handoff
    return handoff


HandoffDep = Annotated[HandoffService, Depends(get_handoff)]


class TicketIn(BaseModel):
    phone: str = Field(min_length=5, max_length=32)
    note: str | None = Field(default=None, max_length=2000)


def client_ip(connection: HTTPConnection) -> str:
    """The caller's address (behind a proxy, uvicorn's --forwarded-allow-ips decides whose
    X-Forwarded-For is believed)."""
    return connection.client.host if connection.client else "unknown"


ClientIP = Annotated[str, Depends(client_ip)]


class SessionIn(BaseModel):
    visitor_token: str | None = Field(default=None, max_length=200)
    customer_token: str | None = Field(default=None, max_length=300)
    language: Literal["zh", "en"] | None = None


class MessageIn(BaseModel):
    client_id: str = Field(min_length=1, max_length=64)
    text: str = ""
    payload: str | None = Field(default=None, max_length=200)
    customer_token: str | None = Field(default=None, max_length=300)
    page: dict[str, Any] | None = None


def _bearer(authorization: str | None) -> str:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise InvalidToken("visitor token required (Authorization: Bearer …)")
    return authorization[7:].strip()


@router.post("/session")
async def open_session(
    body: SessionIn, chat: ChatDep, handoff: HandoffDep, ip: ClientIP
) -> dict[str, Any]:
    """Start or resume a chat: returns the visitor token to keep, the history and the
    handoff state."""
    opened = await chat.open(
        visitor_token=body.visitor_token,
        customer_token=body.customer_token,
        language=body.language,
        ip=ip,
    )
    return {
        **opened.to_dict(),
        "handoff": await handoff.status(opened.session.conversation_id),
    }


@router.post("/messages")
async def post_message(
    body: MessageIn,
    chat: ChatDep,
    handoff: HandoffDep,
    ip: ClientIP,
    authorization: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Send one message and wait (up to the turn deadline) for the bot's replies; the
    answer also carries the handoff state (gateway notices are in the history)."""
    opened = await chat.open(
        visitor_token=_bearer(authorization),
        customer_token=body.customer_token,
        language=None,
        require_visitor=True,
        ip=ip,
    )
    inbound, future = await chat.receive(
        opened.session,
        client_id=body.client_id,
        text=body.text,
        payload=body.payload,
        page=body.page,
    )
    replies: list[dict[str, Any]] = []
    pending = future is not None
    if future is not None:
        timeout = chat.settings.turn_deadline_seconds + HTTP_REPLY_WAIT_EXTRA
        with contextlib.suppress(asyncio.TimeoutError):
            replies = [m.to_dict() for m in await asyncio.wait_for(asyncio.shield(future), timeout)]
            pending = False
    return {
        "ack": {
            "client_id": body.client_id,
            "id": inbound.message.id,
            "duplicate": inbound.duplicate,
        },
        "replies": replies,
        "pending": pending,
        "handoff": await handoff.status(opened.session.conversation_id),
    }


@router.get("/messages")
async def get_messages(
    chat: ChatDep,
    ip: ClientIP,
    authorization: Annotated[str | None, Header()] = None,
    x_customer_token: Annotated[str | None, Header()] = None,
    after: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Messages of the caller's conversation after id ``after`` (for polling clients)."""
    opened = await chat.open(
        visitor_token=_bearer(authorization),
        customer_token=x_customer_token,
        language=None,
        after_id=after,
        require_visitor=True,
        ip=ip,
    )
    return {
        "conversation_id": opened.session.conversation_id,
        "messages": [m.to_dict() for m in opened.history],
    }


@router.post("/handoff/cancel")
async def cancel_handoff(
    chat: ChatDep,
    handoff: HandoffDep,
    ip: ClientIP,
    authorization: Annotated[str | None, Header()] = None,
    x_customer_token: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Stop waiting for a person: back to the bot."""
    opened = await chat.open(
        visitor_token=_bearer(authorization),
        customer_token=x_customer_token,
        language=None,
        require_visitor=True,
        ip=ip,
    )
    conversation_id = opened.session.conversation_id
    cancelled = await handoff.cancel(conversation_id)
    return {"cancelled": cancelled, "handoff": await handoff.status(conversation_id)}


@router.post("/ticket")
async def leave_ticket(
    body: TicketIn,
    chat: ChatDep,
    handoff: HandoffDep,
    ip: ClientIP,
    authorization: Annotated[str | None, Header()] = None,
    x_customer_token: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Leave a callback number (and a note) when nobody can answer now."""
    opened = await chat.open(
        visitor_token=_bearer(authorization),
        customer_token=x_customer_token,
        language=None,
        require_visitor=True,
        ip=ip,
    )
    conversation_id = opened.session.conversation_id
    ticket = await handoff.leave_callback(conversation_id, body.phone, body.note)
    return {"ticket_id": ticket.id, "handoff": await handoff.status(conversation_id)}


async def _send_error(
    ws: WebSocket, exc: KefuError | None, code: str = "", message: str = "", client_id: Any = None
) -> None:
    body = error_body(exc)["error"] if exc else {"code": code, "message": message}
    frame: dict[str, Any] = {"type": "error", **body}
    if isinstance(client_id, str):
        frame["client_id"] = client_id
    await ws.send_json(frame)


@router.websocket("/ws")
async def chat_socket(websocket: WebSocket) -> None:
    chat: ChatService = websocket.app.state.chat
    hub: EventHub = websocket.app.state.hub
    settings: Settings = chat.settings
    origin = websocket.headers.get("origin")
    if origin is not None and origin not in settings.allowed_origins:
        # Accepted only to be closed with a reason the widget can show (a refused upgrade
        # looks to a browser like a network failure, retried for ever); nothing is read.
        await websocket.accept()
        await websocket.close(code=1008, reason="origin not allowed")
        return
    await websocket.accept()
    ip = client_ip(websocket)
    if not await chat.limits.open_socket(ip):
        await _send_error(websocket, RateLimited("sockets", 60))
        await websocket.close(code=CLOSE_RATE_LIMITED, reason="too many connections")
        return
    try:
        await _converse(websocket, chat, hub, ip)
    finally:
        await chat.limits.close_socket(ip)


async def _converse(websocket: WebSocket, chat: ChatService, hub: EventHub, ip: str) -> None:
    try:
        hello = json.loads(await asyncio.wait_for(websocket.receive_text(), HELLO_TIMEOUT))
        if not isinstance(hello, dict) or hello.get("type") != "hello":
            raise ValueError("first frame must be hello")
    except (asyncio.TimeoutError, ValueError, TypeError):
        await websocket.close(code=4400, reason="expected a hello frame")
        return
    except WebSocketDisconnect:
        return
    try:
        after_id = hello.get("after_id")
        opened = await chat.open(
            visitor_token=hello.get("visitor_token")
            if isinstance(hello.get("visitor_token"), str)
            else None,
            customer_token=hello.get("customer_token")
            if isinstance(hello.get("customer_token"), str)
            else None,
            language=hello.get("language"),
            after_id=after_id if isinstance(after_id, int) and after_id >= 0 else 0,
            ip=ip,
        )
    except RateLimited as exc:
        await _send_error(websocket, exc)
        await websocket.close(code=CLOSE_RATE_LIMITED, reason="too many new conversations")
        return
    except InvalidToken as exc:
        await _send_error(websocket, exc)
        await websocket.close(code=4401, reason="invalid customer token")
        return
    except OperationalError:
        await _send_error(websocket, None, **STORAGE_UNAVAILABLE)
        await websocket.close(code=1013, reason="try again later")
        return
    page = hello.get("page") if isinstance(hello.get("page"), dict) else None
    conversation_id = opened.session.conversation_id
    events = hub.subscribe(conversation_id)

    async def pump() -> None:
        while True:
            await websocket.send_json(await events.get())

    # Subscribed before the welcome, pumped after it: no event is lost and none comes first.
    pump_task: asyncio.Task[None] | None = None
    try:
        handoff = get_handoff(websocket)
        await websocket.send_json(
            {
                "type": "welcome",
                **opened.to_dict(),
                "handoff": await handoff.status(conversation_id),
                "consent": await chat.consent_state(opened.session),
            }
        )
        pump_task = asyncio.create_task(pump())
        while True:
            raw = await websocket.receive_text()
            try:
                frame = json.loads(raw)
                if not isinstance(frame, dict):
                    raise ValueError
            except ValueError:
                await _send_error(websocket, None, "malformed", "frames must be JSON objects")
                continue
            kind = frame.get("type")
            if kind == "message":
                client_id = frame.get("client_id")
                if isinstance(frame.get("page"), dict):
                    page = frame["page"]
                try:
                    inbound, _ = await chat.receive(
                        opened.session,
                        client_id=client_id,
                        text=frame.get("text", ""),
                        payload=frame.get("payload"),
                        page=page,
                    )
                except KefuError as exc:
                    await _send_error(websocket, exc, client_id=client_id)
                    continue
                except OperationalError:
                    await _send_error(websocket, None, client_id=client_id, **STORAGE_UNAVAILABLE)
                    continue
                await websocket.send_json(
                    {
                        "type": "ack",
                        "client_id": client_id,
                        "id": inbound.message.id,
                        "duplicate": inbound.duplicate,
                    }
                )
            elif kind == "history":
                after = frame.get("after_id")
                messages = await chat.history(
                    opened.session, after if isinstance(after, int) and after >= 0 else 0
                )
                await websocket.send_json(
                    {"type": "history", "messages": [m.to_dict() for m in messages]}
                )
            elif kind == "ping":
                await websocket.send_json({"type": "pong"})
            elif kind == "consent":
                try:
                    state = await chat.set_consent(opened.session, frame.get("marketing"))
                except KefuError as exc:
                    await _send_error(websocket, exc)
                    continue
                await websocket.send_json({"type": "consent", **state})
            elif kind == "handoff_cancel":
                if not await handoff.cancel(conversation_id):
                    await _send_error(websocket, None, "not_queued", "not waiting for a person")
            elif kind == "ticket":
                phone, note = frame.get("phone"), frame.get("note")
                try:
                    if not isinstance(phone, str) or not (note is None or isinstance(note, str)):
                        raise InvalidInput("phone (and note) must be strings")
                    ticket = await handoff.leave_callback(conversation_id, phone, note)
                except KefuError as exc:
                    await _send_error(websocket, exc)
                    continue
                await websocket.send_json({"type": "ticket", "ticket_id": ticket.id})
            else:
                await _send_error(websocket, None, "unknown_frame", "unknown frame type")
    except WebSocketDisconnect:
        pass
    finally:
        if pump_task is not None:
            pump_task.cancel()
        hub.unsubscribe(conversation_id, events)
