"""The agent console's tables: canned responses (话术库), private notes, conversation tags and dispositions.

A disposition is stored on the handoff it closes (``handoff.disposition``, one of
``bot.models.handoff.DISPOSITIONS``); the console only labels them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, JSONType, UTCDateTime

CANNED_LANGUAGES = ("zh", "en")


class CannedResponse(Base):
    """A reply agents insert instead of typing it: ``/shortcode`` in one language, with
    ``{placeholders}`` filled from the conversation when inserted."""

    __tablename__ = "canned_response"

    id: Mapped[int] = mapped_column(primary_key=True)
    shortcode: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    # The placeholder names the body uses, kept so the picker can say what it will fill.
    placeholders: Mapped[list[str]] = mapped_column(JSONType)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("shortcode", "language"),)


class AgentNote(Base):
    """A private note on a conversation: agents and supervisors see it, the shopper never."""

    __tablename__ = "agent_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversation.id"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_agent_note_conversation_id", "conversation_id", "id"),)


class ConversationTag(Base):
    """A label an agent put on one conversation (customer tags live in ``customer_tag``)."""

    __tablename__ = "conversation_tag"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversation.id"))
    tag: Mapped[str] = mapped_column(String(64))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("conversation_id", "tag"),
        Index("ix_conversation_tag_tag", "tag", "conversation_id"),
    )
