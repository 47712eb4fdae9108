"""Ops review tables: turn labels (corrections), each conversation's review status, and the
full-text index of messages (``bot.search``).

Every row points at its ``conversation_id`` (and a label or index row at its ``message_id``),
with ``ON DELETE CASCADE``, so erasing a conversation takes them along.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, JSONType, UTCDateTime
from bot.models.conversation import Conversation, Message
from bot.models.service import Outcome

LABEL_STATUSES = ("correct", "relabelled")
REVIEW_STATUSES = ("unreviewed", "reviewed", "needs_attention")

# On SQLite the words as text (the FTS5 table message_fts indexes them); on PostgreSQL a
# tsvector under a GIN index.
SearchTerms = Text().with_variant(TSVECTOR(), "postgresql")


class TurnLabel(Base):
    """A reviewer's verdict on one shopper turn: ``correct`` (the NLU result stands) or
    ``relabelled`` (``intent`` and ``entities`` are the right ones). One per message; a new
    verdict replaces the old. ``entities`` are Rasa-style dicts (entity, value, start, end)
    over the message's text."""

    __tablename__ = "turn_label"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("message.id", ondelete="CASCADE"), unique=True
    )
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    intent: Mapped[str] = mapped_column(String(64))
    entities: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    labelled_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("status IN ('correct', 'relabelled')", name="status"),
        Index("ix_turn_label_conversation_id", "conversation_id", "message_id"),
        Index("ix_turn_label_labelled_at", "labelled_at"),
    )


class ConversationReview(Base):
    """Where a conversation stands in review; no row means ``unreviewed``."""

    __tablename__ = "conversation_review"

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversation.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("status IN ('unreviewed', 'reviewed', 'needs_attention')", name="status"),
        Index("ix_conversation_review_status", "status", "conversation_id"),
    )


class MessageSearch(Base):
    """The search words of one message (``bot.search.segment`` of its ops-visible text)."""

    __tablename__ = "message_search"

    message_id: Mapped[int] = mapped_column(
        ForeignKey("message.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    terms: Mapped[str] = mapped_column(SearchTerms)

    __table_args__ = (
        Index("ix_message_search_conversation_id", "conversation_id", "message_id"),
        Index("ix_message_search_terms", "terms", postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
    )


# The review list pages conversations newest first and filters them by what their turns
# said (intent, a confidence below a threshold) and by the outcomes recorded for them.
Index("ix_review_conversation_created", Conversation.created_at, Conversation.id)
Index("ix_review_message_intent", Message.intent, Message.conversation_id)
Index("ix_review_message_confidence", Message.confidence, Message.conversation_id)
Index("ix_review_outcome_conversation", Outcome.kind, Outcome.conversation_id)
