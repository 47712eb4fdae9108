"""Visitors, conversations and every message of them, with the NLU result of each turn."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, JSONType, UTCDateTime


class Visitor(Base):
    """A browser that opened the widget; linked to a customer once a store login is verified."""

    __tablename__ = "visitor"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Conversation(Base):
    """One chat. Its ``id`` is also the Rasa sender id; only the gateway chooses it.

    ``state`` moves bot → queued → agent → bot or closed, changed only by the gateway.
    """

    __tablename__ = "conversation"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    visitor_id: Mapped[str] = mapped_column(ForeignKey("visitor.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    state: Mapped[str] = mapped_column(String(16), default="bot")
    language: Mapped[str] = mapped_column(String(8), default="zh")
    needs_human: Mapped[bool] = mapped_column(default=False)
    flag_reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_conversation_visitor_state", "visitor_id", "state"),
        Index("ix_conversation_customer", "customer_id", "last_message_at"),
        Index("ix_conversation_needs_human", "needs_human", "last_message_at"),
    )


class Message(Base):
    """A message of a conversation: the shopper's (stored before anything acts on it),
    the bot's, an agent's or the system's.

    A shopper message carries the NLU result and the outcome of its turn; ``uid`` is the
    message id Rasa sees, the key that makes a retried turn act once.
    """

    __tablename__ = "message"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversation.id"))
    role: Mapped[str] = mapped_column(String(16))  # shopper | bot | agent | system
    client_msg_id: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text, default="")
    # Buttons offered, or the button payload a shopper pressed.
    buttons: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    payload: Mapped[str | None] = mapped_column(String(200))
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    # Turn result, on shopper messages.
    status: Mapped[str] = mapped_column(String(16), default="done")  # pending | done | failed
    failure: Mapped[str | None] = mapped_column(String(32))
    intent: Mapped[str | None] = mapped_column(String(64), index=True)
    confidence: Mapped[float | None]
    entities: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    actions: Mapped[list[str] | None] = mapped_column(JSONType)
    language: Mapped[str | None] = mapped_column(String(8))
    sentiment: Mapped[float | None]
    latency_ms: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("conversation_id", "client_msg_id"),
        Index("ix_message_conversation_id", "conversation_id", "id"),
        Index("ix_message_status", "status", "id"),
        # Analytics (migration 0012): shopper turns of a period with their intent and
        # confidence read from the index alone; whether a conversation has shopper or agent
        # messages, and an agent's first reply after assignment.
        Index("ix_message_role_created_at", "role", "created_at", "intent", "confidence"),
        Index("ix_message_conversation_role", "conversation_id", "role", "created_at"),
    )
