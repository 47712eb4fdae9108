"""Privacy records: marketing consent (every change kept; the latest row wins) and the audit
log of privacy-relevant actions (consent changes, exports, erasures)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, JSONType, UTCDateTime

CONSENT_PURPOSES = ("marketing",)
CONSENT_SOURCES = ("widget", "agent", "import")
AUDIT_ACTORS = ("staff", "customer", "system")


class Consent(Base):
    """One consent decision of a customer for a purpose, as given at ``recorded_at`` against
    the consent text ``version``. Rows are never updated: the latest one (by time, then id)
    is the customer's current answer; the older ones are the history."""

    __tablename__ = "consent"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    purpose: Mapped[str] = mapped_column(String(32), default="marketing")
    granted: Mapped[bool]
    version: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))  # widget | agent | import
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("source IN ('widget', 'agent', 'import')", name="source"),
        Index("ix_consent_customer_purpose", "customer_id", "purpose", "recorded_at", "id"),
        Index("ix_consent_purpose_recorded", "purpose", "recorded_at"),
    )


class AuditEvent(Base):
    """Who did what to whose data, and when — never the data itself.

    ``actor`` is staff (then ``staff_id`` says who), customer (the data subject, from the
    widget) or system. ``customer_id`` is the subject; it has no foreign key on purpose, so
    the trail outlives an erased customer. ``detail`` holds codes only (purpose, granted,
    version, counts), never names, numbers or text.
    """

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(16))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    action: Mapped[str] = mapped_column(String(32))  # consent_change | export | erasure | …
    customer_id: Mapped[int | None]
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("actor IN ('staff', 'customer', 'system')", name="actor"),
        Index("ix_audit_event_customer_at", "customer_id", "at"),
        Index("ix_audit_event_action_at", "action", "at"),
    )
