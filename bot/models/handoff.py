"""Human handoff: the queue of conversations waiting for (or served by) an agent, agents'
availability, their messages, tickets left outside service hours, and satisfaction answers.

A conversation's own ``state`` (bot | queued | agent | closed) says who owns it now; a
``Handoff`` row is one stay with the humans, from the request to the hand-back or close.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, UTCDateTime
from bot.models.conversation import Conversation

AGENT_STATUSES = ("online", "away", "offline")
DISPOSITIONS = ("resolved", "unresolved", "follow_up", "spam", "duplicate")


class Handoff(Base):
    """One request for a person. ``state``: queued → assigned → ended; ``outcome`` says how
    it ended (handed_back | closed | cancelled). The queue is ordered by ``sort_at``: the
    request time, earlier for VIP customers (a head start, so a long wait still wins)."""

    __tablename__ = "handoff"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversation.id"))
    reason: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    vip: Mapped[bool] = mapped_column(default=False)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sort_at: Mapped[datetime] = mapped_column(UTCDateTime)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(16))
    disposition: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_handoff_state_sort_at", "state", "sort_at"),
        Index("ix_handoff_conversation_id", "conversation_id", "id"),
        Index("ix_handoff_agent_state", "agent_id", "state"),
        Index("ix_handoff_ended_at", "ended_at"),
        Index("ix_handoff_assigned_at", "assigned_at"),  # analytics, migration 0012
    )


class AgentStatus(Base):
    """An agent's availability: online agents get conversations up to ``capacity``; away
    keeps the current ones; offline returns them to the queue."""

    __tablename__ = "agent_status"

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="offline")
    capacity: Mapped[int] = mapped_column(default=3)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_agent_status_status", "status"),)


class AgentMessage(Base):
    """Who wrote an agent message (``message.role = 'agent'``)."""

    __tablename__ = "agent_message"

    message_id: Mapped[int] = mapped_column(ForeignKey("message.id"), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)


class Ticket(Base):
    """A message left for a callback when nobody could answer. ``state``: open | done."""

    __tablename__ = "ticket"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversation.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    reason: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="open")
    # An unverified hint typed by the shopper: shown to agents only.
    callback_phone: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    resolution: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        Index("ix_ticket_state_created_at", "state", "created_at"),
        Index("ix_ticket_conversation_id", "conversation_id", "id"),
    )


class Csat(Base):
    """The satisfaction question asked on hand-back and its answer (1-5, a comment)."""

    __tablename__ = "csat"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversation.id"))
    handoff_id: Mapped[int | None] = mapped_column(ForeignKey("handoff.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    score: Mapped[int | None]
    comment: Mapped[str | None] = mapped_column(Text)
    # asked → scored → done (commented or skipped)
    state: Mapped[str] = mapped_column(String(16), default="asked")
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_csat_conversation_id", "conversation_id", "id"),
        Index("ix_csat_agent_id", "agent_id", "asked_at"),
        Index("ix_csat_asked_at", "asked_at"),  # analytics, migration 0012
    )


# The agents' list of live conversations (to supervise and take over) reads the
# conversation table by state and recent activity.
Index("ix_conversation_state_last_message_at", Conversation.state, Conversation.last_message_at)
