"""The gateway's side of human handoff: runs bot.services.handoff in a unit of work, then
tells everyone watching — the shopper's sockets (key: the conversation id), every agent
(key ``agents``: the queue) and the agent who owns the conversation (key ``agent:<id>``).

Events pushed to the shopper are documented in api/routes/chat.py, those to agents in
api/routes/agent.py. Every state change is stored first; events only announce it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from api.db import in_db
from api.events import EventHub
from bot.clock import Clock, utcnow
from bot.messages import system_message
from bot.models import Conversation, Message
from bot.services import handoff as service
from bot.services import tickets
from bot.services.conversations import MessageView, Reply, TurnInput
from bot.services.handoff import Assignment, Requested
from bot.settings import Settings

if TYPE_CHECKING:
    from api.turns import TurnService

logger = logging.getLogger("kefu.handoff")
T = TypeVar("T")
AGENTS = "agents"


def agent_key(agent_id: int) -> str:
    return f"agent:{agent_id}"


@dataclass
class Notice:
    """A gateway message to store in a conversation and push to its sockets."""

    conversation_id: str
    key: str
    values: dict[str, Any]


def _language(session: Session, conversation_id: str) -> str:
    conversation = session.get(Conversation, conversation_id)
    return conversation.language if conversation else "zh"


def _hours(settings: Settings) -> str:
    return settings.service_hours.replace("-", "–")


class HandoffService:
    def __init__(
        self,
        *,
        settings: Settings,
        hub: EventHub,
        session_factory: sessionmaker[Session] | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.settings = settings
        self.hub = hub
        self.clock = clock
        self._sessions = session_factory
        self.turns: TurnService | None = None  # set by the app: hand-back turns queue there
        self._sockets: dict[int, int] = {}
        self._going_offline: dict[int, asyncio.Task[None]] = {}

    async def _db(self, work: Callable[[Session], T]) -> T:
        return await in_db(work, factory=self._sessions)

    # --- announcing -----------------------------------------------------------------------

    def _notice(self, session: Session, conversation_id: str, key: str, **values: Any) -> Any:
        text = system_message(key, _language(session, conversation_id), **values)
        return service.add_system_message(
            session=session, conversation_id=conversation_id, text=text, clock=self.clock
        )

    def _publish_message(self, conversation_id: str, message: MessageView) -> None:
        self.hub.publish(conversation_id, {"type": "message", "message": message.to_dict()})

    async def _publish_status(self, conversation_ids: list[str]) -> None:
        def work(session: Session) -> list[dict[str, Any]]:
            return [
                {
                    "conversation_id": cid,
                    **service.status(
                        session=session,
                        conversation_id=cid,
                        settings=self.settings,
                        clock=self.clock,
                    ).to_dict(),
                }
                for cid in conversation_ids
            ]

        for status in await self._db(work):
            cid = status.pop("conversation_id")
            self.hub.publish(cid, {"type": "handoff", **status})

    async def publish_queue(self) -> None:
        """The queue to every agent, and each waiting shopper's new place in line."""

        def work(session: Session) -> list[dict[str, Any]]:
            return [e.to_dict() for e in service.queue(session=session, clock=self.clock)]

        entries = await self._db(work)
        self.hub.publish(AGENTS, {"type": "queue", "queue": entries})
        await self._publish_status([e["conversation_id"] for e in entries])

    async def _announce_assignments(self, assignments: list[Assignment]) -> None:
        for a in assignments:

            def work(session: Session, a: Assignment = a) -> MessageView:
                return self._notice(
                    session, a.conversation_id, "handoff_agent_joined", name=a.agent_name
                )

            notice = await self._db(work)
            self._publish_message(a.conversation_id, notice)
            self.hub.publish(
                a.conversation_id,
                {"type": "handoff", "state": "agent", "agent": {"name": a.agent_name}},
            )
            self.hub.publish(
                agent_key(a.agent_id),
                {
                    "type": "assigned",
                    "conversation_id": a.conversation_id,
                    "handoff_id": a.handoff_id,
                },
            )

    async def assign_waiting(self) -> None:
        """Hand waiting conversations to agents with room (when auto-assignment is on)."""
        if self.settings.handoff_auto_assign:
            assignments = await self._db(lambda s: service.auto_assign(session=s, clock=self.clock))
            await self._announce_assignments(assignments)
        await self.publish_queue()

    # --- from turns -----------------------------------------------------------------------

    def request_in(self, session: Session, conversation_id: str, reason: str) -> Requested:
        """Inside a turn's unit of work: queue the conversation or open a ticket."""
        return service.request_human(
            session=session,
            conversation_id=conversation_id,
            reason=reason,
            settings=self.settings,
            clock=self.clock,
        )

    async def announce_request(self, requested: Requested) -> list[MessageView]:
        """After the turn that asked for a person is stored: tell the shopper where they
        stand (and agents that the queue grew). Returns the notices stored."""
        cid = requested.conversation_id
        if requested.kind == "ticket":

            def offline(session: Session) -> MessageView:
                return self._notice(session, cid, "handoff_offline", hours=_hours(self.settings))

            notice = await self._db(offline)
            self._publish_message(cid, notice)
            self.hub.publish(
                cid, {"type": "handoff", "state": "offline", "ticket_id": requested.ticket_id}
            )
            self.hub.publish(AGENTS, {"type": "ticket", "ticket_id": requested.ticket_id})
            return [notice]
        if requested.kind != "queued":
            return []

        def queued(session: Session) -> MessageView:
            status = service.status(
                session=session, conversation_id=cid, settings=self.settings, clock=self.clock
            )
            position = status.position or 1
            return self._notice(
                session,
                cid,
                "handoff_queued",
                ahead=position - 1,
                minutes=max(1, round((status.eta_seconds or 0) / 60)),
            )

        notice = await self._db(queued)
        self._publish_message(cid, notice)
        await self.assign_waiting()
        return [notice]

    def intercept_in(self, session: Session, turn: TurnInput) -> tuple[str, list[Reply]] | None:
        """Inside a turn's unit of work: answers the gateway gives itself, without the bot —
        the satisfaction score and comment, and a callback number for an open ticket.
        Returns (what it was, replies) or None to ask the bot."""
        answer = tickets.csat_answer(
            session=session,
            conversation_id=turn.conversation_id,
            text=turn.text,
            payload=turn.payload,
            clock=self.clock,
        )
        language = turn.language
        if answer == "score":
            skip = system_message("csat_skip_button", language)
            return "csat_score", [
                Reply(
                    text=system_message("csat_thanks", language),
                    buttons=[{"title": skip, "payload": tickets.CSAT_SKIP}],
                )
            ]
        if answer in ("skipped", "comment"):
            return f"csat_{answer}", [Reply(text=system_message("csat_done", language))]
        if turn.payload is None and tickets.answers_callback_offer(
            session=session, conversation_id=turn.conversation_id, message_id=turn.message_id
        ):
            phone = tickets.find_phone(turn.text)
            if phone is not None:
                tickets.leave_callback(
                    session=session,
                    conversation_id=turn.conversation_id,
                    phone=phone,
                    note=turn.text,
                    clock=self.clock,
                )
                return "callback", [
                    Reply(text=system_message("ticket_taken", language, phone=phone))
                ]
        return None

    async def shopper_message(self, turn: TurnInput) -> None:
        """A shopper message while a person owns (or is about to own) the conversation:
        to the owning agent, or to the queue's watchers."""

        def work(session: Session) -> tuple[int | None, dict[str, Any] | None]:
            message = session.get(Message, turn.message_id)
            view = (
                MessageView(
                    id=message.id,
                    role=message.role,
                    text=message.text,
                    created_at=message.created_at,
                    client_msg_id=message.client_msg_id,
                ).to_dict()
                if message
                else None
            )
            return service.owner(session=session, conversation_id=turn.conversation_id), view

        owner, view = await self._db(work)
        event = {"type": "message", "conversation_id": turn.conversation_id, "message": view}
        if owner is not None:
            self.hub.publish(agent_key(owner), event)
        elif turn.state == "queued":
            await self.publish_queue()

    # --- the shopper ----------------------------------------------------------------------

    async def status(self, conversation_id: str) -> dict[str, Any]:
        return (
            await self._db(
                lambda s: service.status(
                    session=s,
                    conversation_id=conversation_id,
                    settings=self.settings,
                    clock=self.clock,
                )
            )
        ).to_dict()

    async def cancel(self, conversation_id: str) -> bool:
        """The shopper stops waiting: back to the bot."""

        def work(session: Session) -> MessageView | None:
            if not service.cancel(
                session=session, conversation_id=conversation_id, clock=self.clock
            ):
                return None
            return self._notice(session, conversation_id, "handoff_cancelled")

        notice = await self._db(work)
        if notice is None:
            return False
        self._publish_message(conversation_id, notice)
        self.hub.publish(conversation_id, {"type": "handoff", "state": "bot"})
        await self.publish_queue()
        return True

    async def leave_callback(
        self, conversation_id: str, phone: str, note: str | None
    ) -> tickets.TicketView:
        def work(session: Session) -> tuple[tickets.TicketView, MessageView]:
            ticket = tickets.leave_callback(
                session=session,
                conversation_id=conversation_id,
                phone=phone,
                note=note,
                clock=self.clock,
            )
            notice = self._notice(
                session, conversation_id, "ticket_taken", phone=ticket.callback_phone
            )
            return ticket, notice

        ticket, notice = await self._db(work)
        self._publish_message(conversation_id, notice)
        self.hub.publish(conversation_id, {"type": "handoff", "state": "bot"})
        self.hub.publish(AGENTS, {"type": "ticket", "ticket_id": ticket.id})
        return ticket

    # --- agents -----------------------------------------------------------------------------

    async def claim(self, conversation_id: str, agent_id: int) -> Assignment:
        assignment = await self._db(
            lambda s: service.claim(
                session=s, conversation_id=conversation_id, agent_id=agent_id, clock=self.clock
            )
        )
        await self._announce_assignments([assignment])
        await self.publish_queue()
        return assignment

    async def send(self, conversation_id: str, agent_id: int, text: str) -> MessageView:
        message = await self._db(
            lambda s: service.send_agent_message(
                session=s,
                conversation_id=conversation_id,
                agent_id=agent_id,
                text=text,
                clock=self.clock,
            )
        )
        self._publish_message(conversation_id, message)
        self.hub.publish(
            agent_key(agent_id),
            {"type": "message", "conversation_id": conversation_id, "message": message.to_dict()},
        )
        return message

    async def hand_back(self, conversation_id: str, agent_id: int) -> None:
        """Back to the bot, which asks the satisfaction question (a hand-back turn, queued
        behind any shopper turn of the conversation)."""

        def work(session: Session) -> MessageView:
            handoff = service.hand_back(
                session=session,
                conversation_id=conversation_id,
                agent_id=agent_id,
                clock=self.clock,
            )
            tickets.ask_csat(
                session=session,
                conversation_id=conversation_id,
                handoff_id=handoff.id,
                agent_id=agent_id,
                clock=self.clock,
            )
            return self._notice(session, conversation_id, "handoff_back_to_bot")

        notice = await self._db(work)
        self._publish_message(conversation_id, notice)
        self.hub.publish(conversation_id, {"type": "handoff", "state": "bot"})
        self.hub.publish(
            agent_key(agent_id),
            {"type": "released", "conversation_id": conversation_id, "state": "bot"},
        )
        if self.turns is not None:
            self.turns.submit_handback(conversation_id)
        await self.assign_waiting()

    async def close(self, conversation_id: str, agent_id: int, disposition: str) -> None:
        def work(session: Session) -> MessageView:
            service.close(
                session=session,
                conversation_id=conversation_id,
                agent_id=agent_id,
                disposition=disposition,
                clock=self.clock,
            )
            return self._notice(session, conversation_id, "handoff_closed")

        notice = await self._db(work)
        self._publish_message(conversation_id, notice)
        self.hub.publish(conversation_id, {"type": "handoff", "state": "closed"})
        self.hub.publish(
            agent_key(agent_id),
            {"type": "released", "conversation_id": conversation_id, "state": "closed"},
        )
        await self.assign_waiting()

    # --- presence ---------------------------------------------------------------------------

    async def aclose(self) -> None:
        for task in self._going_offline.values():
            task.cancel()
        await asyncio.gather(*self._going_offline.values(), return_exceptions=True)
        self._going_offline.clear()

    def socket_opened(self, agent_id: int) -> None:
        self._sockets[agent_id] = self._sockets.get(agent_id, 0) + 1
        pending = self._going_offline.pop(agent_id, None)
        if pending is not None:
            pending.cancel()

    def socket_closed(self, agent_id: int) -> None:
        """The agent's last console socket on this worker closed: unless one opens again
        within the grace period (a reload, a network blip), the agent goes offline and their
        conversations go back to the queue instead of waiting for someone who left."""
        left = self._sockets.get(agent_id, 1) - 1
        if left > 0:
            self._sockets[agent_id] = left
            return
        self._sockets.pop(agent_id, None)
        grace = self.settings.agent_offline_grace_seconds
        if grace <= 0:
            return

        async def later() -> None:
            await asyncio.sleep(grace)
            self._going_offline.pop(agent_id, None)
            if self._sockets.get(agent_id):
                return
            try:
                await self.set_status(agent_id, "offline", None)
            except Exception:
                logger.exception("could not set a departed agent offline")

        self._going_offline[agent_id] = asyncio.create_task(later())

    async def set_status(
        self, agent_id: int, status: str, capacity: int | None
    ) -> service.AgentView:
        def work(session: Session) -> tuple[list[str], list[MessageView], service.AgentView]:
            returned = service.set_status(
                session=session,
                agent_id=agent_id,
                status=status,
                capacity=capacity,
                settings=self.settings,
                clock=self.clock,
            )
            notices = [self._notice(session, cid, "handoff_returned") for cid in returned]
            view = service.agent_view(session=session, agent_id=agent_id, settings=self.settings)
            return returned, notices, view

        returned, notices, view = await self._db(work)
        for cid, notice in zip(returned, notices, strict=True):
            self._publish_message(cid, notice)
            self.hub.publish(
                agent_key(agent_id), {"type": "released", "conversation_id": cid, "state": "queued"}
            )
        await self.assign_waiting()
        return view
