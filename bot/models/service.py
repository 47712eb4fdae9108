"""What the service journeys leave behind: outcome rows for the customer profile, return and
exchange requests, coupons and the store's promotions.

An ``Outcome`` is written in the same transaction as the business change it records and is
unique per (Rasa message id, kind): a retried turn finds it and does not act twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, JSONType, UTCDateTime


class Outcome(Base):
    """One thing a journey did for a customer: delay_accepted, cancelled, coupon_issued,
    return_requested, exchange_requested, complaint_recorded, invoice_requested, …"""

    __tablename__ = "outcome"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str] = mapped_column(String(64))
    conversation_id: Mapped[str | None] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("message_id", "kind", name="uq_outcome_message_id_kind"),
        Index("ix_outcome_customer_created", "customer_id", "created_at"),
        Index("ix_outcome_kind_created", "kind", "created_at"),
    )


class ServiceRequest(Base):
    """A return or an exchange of one order line."""

    __tablename__ = "service_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # return | exchange
    # requested | approved | received | refunded | exchanged | rejected
    status: Mapped[str] = mapped_column(String(16), default="requested")
    reason: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    order_item_id: Mapped[int] = mapped_column(ForeignKey("order_item.id"), index=True)
    exchange_variant_id: Mapped[int | None] = mapped_column(ForeignKey("variant.id"))
    refund_fen: Mapped[int | None]
    message_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_service_request_customer_created", "customer_id", "created_at"),)


class Coupon(Base):
    """A coupon held by one customer (member coupons, delay compensation)."""

    __tablename__ = "coupon"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    source: Mapped[str] = mapped_column(String(32))  # member | delay_compensation
    amount_fen: Mapped[int]
    min_spend_fen: Mapped[int] = mapped_column(default=0)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_coupon_customer_expires", "customer_id", "expires_at"),)


class Promotion(Base):
    """A store-wide promotion: spend ``min_spend_fen``, save ``discount_fen``."""

    __tablename__ = "promotion"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    min_spend_fen: Mapped[int] = mapped_column(default=0)
    discount_fen: Mapped[int]
    # None: every shopper; else the lowest membership level it is for.
    member_level: Mapped[str | None] = mapped_column(String(16))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_promotion_period", "starts_at", "ends_at"),)
