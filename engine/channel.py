"""The input channel the gateway talks to (configured in credentials.yml).

``POST /webhooks/kefu/turn`` runs one turn and answers, in one response, the bot's replies
together with the turn's NLU result, the actions that ran and the conversation language — so
the gateway never parses a message twice. A turn has *failed* when Rasa logged an action
exception for it (Rasa 3.6 swallows action-server errors and carries on) or raised; the
gateway also treats "no bot message" as failed.

``GET /webhooks/kefu/ready`` is the readiness check: a model is loaded and the action server
answers its health check.

``POST /webhooks/kefu/privacy`` ``{"op": "export" | "erase", "senders": [...]}`` returns or
deletes whole trackers (every event of every session) for the gateway's data export and
erasure. Each sender is handled under Rasa's own ``agent.lock_store.lock(sender)``, so it never
interleaves with a turn of that conversation, and a tracker is deleted whole, never in part. It
needs ``Authorization: Bearer <token>``, the token being HMAC-SHA256 of the gateway's
``KEFU_SECRET_KEY`` (from the environment, else ``$KEFU_VAR_DIR/secrets.json``) over
``PRIVACY_TOKEN_CONTEXT`` — the same derivation as ``bot.privacy.erasure.engine_token``.

A turn with ``"control": "handback"`` is the gateway's hand-back after a person served the
chat: the text is an external intent (``/EXTERNAL_handback``). Any form still active from
before the takeover is ended first — the form would otherwise run before any rule and try
to read the intent as the slot it asked for — and the rule for the intent then carries on
(data/rules/handoff.yml). Every other slot stays: the bot resumes with its context.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.core.constants import REQUESTED_SLOT
from rasa.shared.core.events import ActionExecuted, ActiveLoop, SlotSet, UserUttered
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)

ACTION_EXCEPTION_LOG = "Encountered an exception while running action"
MAX_TEXT = 5000  # the gateway enforces the product limit; this only guards the engine
PRIVACY_TOKEN_CONTEXT = b"kefu.engine.privacy.v1"
MAX_PRIVACY_SENDERS = 500


@dataclass
class _TurnState:
    failure: str | None = None
    failed_actions: list[str] = field(default_factory=list)


_CURRENT_TURN: contextvars.ContextVar[_TurnState | None] = contextvars.ContextVar(
    "kefu_turn", default=None
)


class _ActionFailureHandler(logging.Handler):
    """Marks the running turn as failed when Rasa logs an action exception.

    Rasa handles a message inside the channel's own task, so the context variable set by the
    channel is visible here.
    """

    def emit(self, record: logging.LogRecord) -> None:
        state = _CURRENT_TURN.get()
        if state is None:
            return
        message = record.getMessage()
        if message.startswith(ACTION_EXCEPTION_LOG):
            state.failure = "action_exception"
            state.failed_actions.append(message.split("'")[1] if "'" in message else "")


_HANDLER = _ActionFailureHandler(level=logging.ERROR)


def _install_failure_handler() -> None:
    processor_logger = logging.getLogger("rasa.core.processor")
    if _HANDLER not in processor_logger.handlers:
        processor_logger.addHandler(_HANDLER)


def summarize_turn(events: list[Any], message_id: str) -> dict[str, Any]:
    """NLU result and executed actions of the turn started by user message ``message_id``."""
    nlu: dict[str, Any] = {}
    actions: list[str] = []
    started = False
    for event in events:
        if isinstance(event, UserUttered):
            if started:
                break
            if event.message_id == message_id:
                started = True
                intent = event.intent or {}
                nlu = {
                    "intent": intent.get("name"),
                    "confidence": intent.get("confidence"),
                    "entities": [
                        {k: e.get(k) for k in ("entity", "value", "start", "end", "extractor")}
                        for e in event.entities
                        if e.get("entity") != "language"
                    ],
                    "ranking": [
                        {"name": r.get("name"), "confidence": r.get("confidence")}
                        for r in (event.parse_data.get("intent_ranking") or [])[:3]
                    ],
                }
        elif (
            started
            and isinstance(event, ActionExecuted)
            and event.action_name
            and event.action_name != "action_listen"
        ):
            actions.append(event.action_name)
    return {"nlu": nlu, "actions": actions}


def privacy_token() -> str | None:
    """The token the gateway must present on the privacy route (None: no secret known)."""
    secret = os.environ.get("KEFU_SECRET_KEY", "")
    if not secret:
        path = Path(os.environ.get("KEFU_VAR_DIR", "var")) / "secrets.json"
        try:
            secret = str(json.loads(path.read_text()).get("secret_key") or "")
        except (OSError, ValueError):
            secret = ""
    if not secret:
        return None
    return hmac.new(secret.encode(), PRIVACY_TOKEN_CONTEXT, hashlib.sha256).hexdigest()


class UnsupportedTrackerStore(Exception):
    """A tracker store this channel cannot delete from (it refuses rather than pretend)."""


def _concrete_stores(store: Any) -> list[Any]:
    """The stores holding events behind Rasa's wrappers (AwaitableTrackerStore,
    FailSafeTrackerStore and its in-memory fallback, if one was ever used)."""
    found: list[Any] = []
    pending = [store]
    while pending:
        current = pending.pop()
        if current is None or any(current is f for f in found):
            continue
        inner = getattr(current, "_tracker_store", None)
        if inner is not None:
            pending.append(inner)
            pending.append(getattr(current, "_fallback_tracker_store", None))
            continue
        found.append(current)
    return found


def _delete_tracker(store: Any, sender: str) -> int:
    """Delete every event of ``sender`` from one concrete store; the number deleted."""
    if hasattr(store, "SQLEvent") and hasattr(store, "session_scope"):
        with store.session_scope() as session:
            deleted = (
                session.query(store.SQLEvent)
                .filter(store.SQLEvent.sender_id == sender)
                .delete(synchronize_session=False)
            )
            session.commit()
            return int(deleted or 0)
    if isinstance(getattr(store, "store", None), dict):  # InMemoryTrackerStore
        return 1 if store.store.pop(sender, None) is not None else 0
    if hasattr(store, "red") and hasattr(store, "_get_key_prefix"):  # RedisTrackerStore
        return int(store.red.delete(store._get_key_prefix() + sender) or 0)
    raise UnsupportedTrackerStore(type(store).__name__)


class KefuInput(InputChannel):
    """The gateway's channel into Rasa."""

    def __init__(self, action_health_timeout: float = 2.0) -> None:
        self.action_health_timeout = action_health_timeout

    @classmethod
    def name(cls) -> str:
        return "kefu"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> KefuInput:
        credentials = credentials or {}
        return cls(float(credentials.get("action_health_timeout", 2.0)))

    async def _action_server_ok(self, agent: Any) -> bool:
        endpoint = getattr(agent, "action_endpoint", None)
        if endpoint is None or not endpoint.url:
            return True
        url = endpoint.url.rsplit("/webhook", 1)[0] + "/health"
        try:
            timeout = aiohttp.ClientTimeout(total=self.action_health_timeout)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url) as resp,
            ):
                return resp.status == 200
        except Exception:
            return False

    @staticmethod
    async def _end_active_loop(agent: Any, sender: str) -> None:
        async with agent.lock_store.lock(sender):
            tracker = await agent.tracker_store.retrieve(sender)
            if tracker is None or not tracker.active_loop_name:
                return
            tracker.update(ActiveLoop(None))
            tracker.update(SlotSet(REQUESTED_SLOT, None))
            await agent.tracker_store.save(tracker)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        _install_failure_handler()
        bp = Blueprint("kefu_webhook", __name__)

        @bp.route("/ready", methods=["GET"])
        async def ready(request: Request) -> HTTPResponse:
            agent = getattr(request.app.ctx, "agent", None)
            model = bool(agent is not None and agent.is_ready())
            actions = await self._action_server_ok(agent) if model else False
            return response.json(
                {"model": model, "action_server": actions},
                status=200 if model and actions else 503,
            )

        @bp.route("/turn", methods=["POST"])
        async def turn(request: Request) -> HTTPResponse:
            body = request.json if isinstance(request.json, dict) else {}
            sender, text = body.get("sender"), body.get("text")
            message_id, metadata = body.get("message_id"), body.get("metadata") or {}
            if not (
                isinstance(sender, str)
                and sender
                and isinstance(text, str)
                and isinstance(message_id, str)
                and isinstance(metadata, dict)
                and len(text) <= MAX_TEXT
            ):
                return response.json({"error": "bad_request"}, status=400)
            agent = getattr(request.app.ctx, "agent", None)
            if agent is None or not agent.is_ready():
                return response.json({"error": "no_model"}, status=503)
            if body.get("control") == "handback":
                await self._end_active_loop(agent, sender)

            state = _TurnState()
            token = _CURRENT_TURN.set(state)
            collector = CollectingOutputChannel()
            started = time.perf_counter()
            try:
                await on_new_message(
                    UserMessage(
                        text,
                        collector,
                        sender,
                        input_channel=self.name(),
                        metadata=metadata,
                        message_id=message_id,
                    )
                )
            except Exception:
                logger.exception("turn failed in the engine")
                state.failure = state.failure or "engine_exception"
            finally:
                _CURRENT_TURN.reset(token)
            elapsed_ms = int((time.perf_counter() - started) * 1000)

            tracker = await agent.tracker_store.retrieve(sender)
            summary = summarize_turn(list(tracker.events) if tracker else [], message_id)
            language = tracker.get_slot("language") if tracker else None
            replies = [
                {k: m[k] for k in ("text", "buttons", "custom", "image") if m.get(k)}
                for m in collector.messages
            ]
            return response.json(
                {
                    "replies": replies,
                    "nlu": summary["nlu"],
                    "actions": summary["actions"],
                    "language": language,
                    "failure": state.failure,
                    "failed_actions": state.failed_actions,
                    "engine_ms": elapsed_ms,
                }
            )

        @bp.route("/privacy", methods=["POST"])
        async def privacy(request: Request) -> HTTPResponse:
            expected = privacy_token()
            given = request.headers.get("authorization", "")
            if expected is None:
                return response.json({"error": "not_configured"}, status=503)
            if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
                return response.json({"error": "forbidden"}, status=403)
            body = request.json if isinstance(request.json, dict) else {}
            op, senders = body.get("op"), body.get("senders")
            if (
                op not in ("export", "erase")
                or not isinstance(senders, list)
                or len(senders) > MAX_PRIVACY_SENDERS
                or not all(isinstance(s, str) and 0 < len(s) <= 255 for s in senders)
            ):
                return response.json({"error": "bad_request"}, status=400)
            agent = getattr(request.app.ctx, "agent", None)
            if agent is None:
                return response.json({"error": "no_model"}, status=503)
            if op == "export":
                trackers: dict[str, list[dict[str, Any]]] = {}
                for sender in senders:
                    async with agent.lock_store.lock(sender):
                        tracker = await agent.tracker_store.retrieve_full_tracker(sender)
                    trackers[sender] = [e.as_dict() for e in tracker.events] if tracker else []
                return response.json({"trackers": trackers})
            erased: dict[str, int] = {}
            try:
                for sender in senders:
                    async with agent.lock_store.lock(sender):
                        erased[sender] = sum(
                            _delete_tracker(store, sender)
                            for store in _concrete_stores(agent.tracker_store)
                        )
                        left = await agent.tracker_store.retrieve_full_tracker(sender)
                    if left is not None and left.events:
                        return response.json({"error": "not_erased"}, status=500)
            except UnsupportedTrackerStore as exc:
                logger.error("privacy: cannot erase from tracker store %s", exc)
                return response.json({"error": "unsupported_tracker_store"}, status=501)
            # Counts only: the log never names what was erased beyond the conversation ids.
            logger.info("privacy: erased %d tracker(s)", len(erased))
            return response.json({"erased": erased})

        return bp
