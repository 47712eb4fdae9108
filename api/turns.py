"""Turns: one in flight per conversation, the rest waiting in order.

A stored shopper message becomes a turn: it is sent to the engine under the deadline, and
its NLU result and replies are stored in one transaction, then pushed to the conversation's
sockets. A failed turn (engine unavailable, deadline missed, action exception, no reply)
answers with an honest message in the shopper's language and flags the conversation for a
person — and asks for one (queued, or a ticket outside service hours), since the honest
message promises a colleague. Nothing is dropped: the shopper message is already stored.

While a person owns the conversation (queued or agent) the engine is not asked: the message
goes to the agent. A turn that asked for a person (the bot's ``{"kefu": {"handoff": …}}``,
or what the gateway sees: an angry complaint, two misunderstandings, a VIP with a problem,
a failure) is stored and, in the same transaction, queues the conversation. The hand-back
is a turn of its own, queued like a shopper's so it never overlaps one.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from api.db import in_db
from api.engine import EngineClient, EngineError, EngineTurn
from api.events import EventHub
from api.handoff import HandoffService
from bot.clock import Clock, utcnow
from bot.messages import system_message
from bot.models import Conversation
from bot.sentiment import score as score_sentiment
from bot.services import conversations as conv
from bot.services import handoff as handoff_service
from bot.services import tickets
from bot.services.conversations import MessageView, Reply, TurnOutcome
from bot.services.handoff import Requested

logger = logging.getLogger("kefu.turns")
# The external intent of a hand-back (data/rules/handoff.yml answers it).
HANDBACK_INTENT = "/EXTERNAL_handback"

Runner = Callable[[int, dict[str, Any]], Awaitable[list[MessageView]]]


class TurnQueue:
    """Per-conversation FIFO: at most one turn of a conversation runs at a time."""

    def __init__(self, runner: Runner, *, max_waiting: int) -> None:
        self._runner = runner
        self._max_waiting = max_waiting
        self._queues: dict[str, asyncio.Queue[tuple[int, dict[str, Any], asyncio.Future[Any]]]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    def waiting(self, conversation_id: str) -> int:
        queue = self._queues.get(conversation_id)
        return queue.qsize() if queue else 0

    def submit(
        self, conversation_id: str, message_id: int, extra: dict[str, Any] | None = None
    ) -> asyncio.Future[list[MessageView]]:
        future: asyncio.Future[list[MessageView]] = asyncio.get_running_loop().create_future()
        queue = self._queues.setdefault(conversation_id, asyncio.Queue())
        queue.put_nowait((message_id, extra or {}, future))
        if conversation_id not in self._workers:
            self._workers[conversation_id] = asyncio.create_task(self._drain(conversation_id))
        return future

    def is_full(self, conversation_id: str) -> bool:
        return self.waiting(conversation_id) >= self._max_waiting

    async def _drain(self, conversation_id: str) -> None:
        queue = self._queues[conversation_id]
        try:
            while not queue.empty():
                message_id, extra, future = queue.get_nowait()
                try:
                    result = await self._runner(message_id, extra)
                except Exception as exc:
                    logger.exception("turn crashed", extra={"message_id": message_id})
                    if not future.done():
                        future.set_exception(exc)
                else:
                    if not future.done():
                        future.set_result(result)
        finally:
            # No await between the empty check and here, so no submit can slip in between.
            del self._workers[conversation_id]
            if queue.empty():
                self._queues.pop(conversation_id, None)

    async def drain_all(self) -> None:
        while self._workers:
            await asyncio.gather(*list(self._workers.values()), return_exceptions=True)


def forwardable_text(text: str) -> str:
    """Shopper text is never an intent: a leading '/' is sent as a full-width slash
    (the NLU normaliser folds it back, so understanding is unchanged)."""
    stripped = text.lstrip()
    return "／" + stripped[1:] if stripped.startswith("/") else text


class TurnService:
    """Runs stored shopper messages through the engine and stores what came back."""

    def __init__(
        self,
        *,
        engine: EngineClient,
        hub: EventHub,
        max_waiting: int,
        session_factory: sessionmaker[Session] | None = None,
        clock: Clock = utcnow,
        handoff: HandoffService | None = None,
    ) -> None:
        self.engine = engine
        self.hub = hub
        self.clock = clock
        self._sessions = session_factory
        self.handoff = handoff
        if handoff is not None:
            handoff.turns = self
        self.queue = TurnQueue(self._run, max_waiting=max_waiting)

    def submit_handback(self, conversation_id: str) -> asyncio.Future[list[MessageView]]:
        """Queue the hand-back turn behind any shopper turn of the conversation."""
        return self.queue.submit(
            conversation_id, 0, {"control": "handback", "conversation_id": conversation_id}
        )

    async def _run(self, message_id: int, extra: dict[str, Any]) -> list[MessageView]:
        if extra.get("control") == "handback":
            return await self.run_handback(str(extra["conversation_id"]))
        return await self.run_turn(message_id, extra)

    async def _db(self, work: Callable[[Session], Any]) -> Any:
        return await in_db(work, factory=self._sessions)

    async def run_turn(self, message_id: int, extra: dict[str, Any]) -> list[MessageView]:
        turn = await self._db(lambda s: conv.turn_input(session=s, message_id=message_id))
        if turn.status != "pending":
            return []  # already answered (a duplicate submission)
        if turn.state == "closed" and self.handoff is not None:
            # Writing into a closed chat opens it again, with the bot.
            await self._db(
                lambda s: handoff_service.reopen(session=s, conversation_id=turn.conversation_id)
            )
            turn = await self._db(lambda s: conv.turn_input(session=s, message_id=message_id))
        if turn.state != "bot":
            # A person owns the conversation: the bot is not asked.
            await self._db(
                lambda s: conv.record_turn(
                    session=s,
                    message_id=message_id,
                    outcome=TurnOutcome(replies=[], failure=None),
                    clock=self.clock,
                )
            )
            if self.handoff is not None:
                await self.handoff.shopper_message(turn)
            # The turn is over (nothing from the bot): a client waiting for it stops.
            self.hub.publish(turn.conversation_id, {"type": "typing", "on": False})
            return []
        if self.handoff is not None:
            handled = await self._intercepted(message_id)
            if handled is not None:
                return handled

        metadata: dict[str, Any] = {
            "customer_id": turn.customer_id,
            "language": turn.language,
            "sentiment": turn.sentiment,
        }
        if isinstance(extra.get("page"), dict):
            metadata["page"] = extra["page"]
        text = turn.payload if turn.payload else forwardable_text(turn.text)

        self.hub.publish(turn.conversation_id, {"type": "typing", "on": True})
        started = time.perf_counter()
        failure: str | None = None
        result = EngineTurn(replies=[])
        try:
            result = await self.engine.turn(turn.conversation_id, turn.uid, text, metadata)
            failure = result.failure
        except EngineError as exc:
            failure = exc.code
        latency_ms = int((time.perf_counter() - started) * 1000)

        replies = [
            Reply(text=r["text"], buttons=r.get("buttons") or None)
            for r in result.replies
            if isinstance(r.get("text"), str) and r["text"]
        ]
        controls = [
            r["custom"]["kefu"]
            for r in result.replies
            if isinstance(r.get("custom"), dict) and isinstance(r["custom"].get("kefu"), dict)
        ]
        if failure is None and not replies:
            failure = "no_reply"
        language = result.language or turn.language
        if failure:
            replies = [Reply(text=system_message("turn_failed", language))]
        handoff = next((c["handoff"] for c in controls if isinstance(c.get("handoff"), str)), None)
        strong_negative = score_sentiment(turn.text).strong_negative if turn.text.strip() else False
        outcome = TurnOutcome(
            replies=replies,
            intent=result.nlu.get("intent"),
            confidence=result.nlu.get("confidence"),
            entities=result.nlu.get("entities") or [],
            actions=result.actions,
            language=language,
            latency_ms=latency_ms,
            failure=failure,
            flag=f"handoff:{handoff}" if handoff else None,
        )

        def store(s: Session) -> tuple[list[MessageView], Requested | None]:
            replies = conv.record_turn(
                session=s, message_id=message_id, outcome=outcome, clock=self.clock
            )
            if not replies or self.handoff is None:
                return replies, None  # a person took over meanwhile: nothing to ask for
            reason = (
                f"turn_failed:{failure}"
                if failure
                else handoff_service.turn_trigger(
                    session=s,
                    message_id=message_id,
                    intent=outcome.intent,
                    requested=handoff,
                    strong_negative=strong_negative,
                    settings=self.handoff.settings,
                )
            )
            if reason is None:
                return replies, None
            return replies, self.handoff.request_in(s, turn.conversation_id, reason)

        stored, requested = await self._db(store)
        logger.info(
            "turn",
            extra={
                "conversation_id": turn.conversation_id,
                "message_id": message_id,
                "intent": outcome.intent,
                "confidence": outcome.confidence,
                "latency_ms": latency_ms,
                "failure": failure,
                "replies": len(stored),
            },
        )
        for message in stored:
            self.hub.publish(
                turn.conversation_id, {"type": "message", "message": message.to_dict()}
            )
        if requested is not None and self.handoff is not None:
            # The notices are pushed and kept in the history, not counted as the turn's
            # replies (HTTP clients read the handoff state from the response instead).
            await self.handoff.announce_request(requested)
        # Last: "typing off" also tells a client that this turn's replies are all there.
        self.hub.publish(turn.conversation_id, {"type": "typing", "on": False})
        return stored

    async def _intercepted(self, message_id: int) -> list[MessageView] | None:
        """Answers the gateway gives itself (satisfaction, a callback number), stored as the
        turn's replies; None when the bot should answer."""
        assert self.handoff is not None
        handoff = self.handoff

        def work(s: Session) -> tuple[str, list[MessageView]] | None:
            turn = conv.turn_input(session=s, message_id=message_id)
            found = handoff.intercept_in(s, turn)
            if found is None:
                return None
            intent, replies = found
            outcome = TurnOutcome(replies=replies, intent=intent, language=turn.language)
            return turn.conversation_id, conv.record_turn(
                session=s, message_id=message_id, outcome=outcome, clock=self.clock
            )

        result = await self._db(work)
        if result is None:
            return None
        conversation_id, stored = result
        for message in stored:
            self.hub.publish(conversation_id, {"type": "message", "message": message.to_dict()})
        self.hub.publish(conversation_id, {"type": "typing", "on": False})
        return stored

    async def run_handback(self, conversation_id: str) -> list[MessageView]:
        """Tell the engine a person handed the chat back: it ends any active form and asks
        the satisfaction question. Its replies are stored like any bot reply (only while
        the bot owns the conversation)."""

        def context(s: Session) -> tuple[int | None, str] | None:
            conversation = s.get(Conversation, conversation_id)
            if conversation is None or conversation.state != "bot":
                return None
            return conversation.customer_id, conversation.language

        found = await self._db(context)
        if found is None:
            return []
        customer_id, language = found
        metadata = {"customer_id": customer_id, "language": language, "handback": True}
        self.hub.publish(conversation_id, {"type": "typing", "on": True})
        try:
            result = await self.engine.turn(
                conversation_id,
                secrets.token_hex(16),
                HANDBACK_INTENT,
                metadata,
                control="handback",
            )
        except EngineError as exc:
            logger.warning("hand-back turn failed", extra={"failure": exc.code})
            result = EngineTurn(replies=[], failure=exc.code)
        replies = [
            (r["text"], r.get("buttons") or None)
            for r in result.replies
            if isinstance(r.get("text"), str) and r["text"]
        ]
        if not replies:
            # The engine could not ask: the gateway asks the same question itself.
            replies = [
                (
                    system_message("csat_question", language),
                    [{"title": str(n), "payload": tickets.csat_payload(n)} for n in range(1, 6)],
                )
            ]
        stored: list[MessageView] = await self._db(
            lambda s: handoff_service.record_bot_replies(
                session=s, conversation_id=conversation_id, replies=replies, clock=self.clock
            )
        )
        for message in stored:
            self.hub.publish(conversation_id, {"type": "message", "message": message.to_dict()})
        self.hub.publish(conversation_id, {"type": "typing", "on": False})
        return stored

    async def recover_pending(self) -> int:
        """Re-run turns of messages that were stored but never answered (e.g. a restart)."""
        pending: list[tuple[str, int]] = await self._db(lambda s: conv.pending_messages(session=s))
        for conversation_id, message_id in pending:
            self.queue.submit(conversation_id, message_id)
        return len(pending)
