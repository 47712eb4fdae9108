"""CRM tables: customer tags, RFM scores, co-purchase rules, best-sellers, saved segments.

Scores and rules are derived data, rebuilt by jobs (``bot.services.rfm``,
``bot.services.recommendations``); each row says when it was computed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, JSONType, UTCDateTime
from bot.models.store import Variant

TAG_SOURCES = ("bot_rule", "agent", "import")
# Orders that count as purchases for scores, rules and segments: paid and not undone
# (cancelled, refunded and unpaid orders say nothing about what a customer keeps buying).
PURCHASED_ORDER_STATUSES = ("paid", "shipped", "delivered")


class CustomerTag(Base):
    """A label on a customer (vip, complainer, interested:shirt, …) and who put it there."""

    __tablename__ = "customer_tag"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    tag: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16), default="bot_rule")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("customer_id", "tag"),
        Index("ix_customer_tag_tag", "tag", "customer_id"),
    )


class CustomerRfm(Base):
    """Recency, frequency and monetary quintiles (1 = lowest, 5 = best) of a customer with
    at least one kept order, as of ``computed_at``."""

    __tablename__ = "customer_rfm"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), primary_key=True)
    last_order_at: Mapped[datetime] = mapped_column(UTCDateTime)
    frequency: Mapped[int]
    monetary_fen: Mapped[int] = mapped_column(BigInteger)
    r_score: Mapped[int]
    f_score: Mapped[int]
    m_score: Mapped[int]
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_customer_rfm_scores", "r_score", "f_score", "m_score"),)


class ProductAssociation(Base):
    """An item-to-item rule "customers who bought the antecedent also bought the consequent".

    ``customers`` is how many customers bought both; ``support`` = customers / all buyers,
    ``confidence`` = customers / buyers of the antecedent, ``lift`` = confidence / share of
    buyers who bought the consequent."""

    __tablename__ = "product_association"

    id: Mapped[int] = mapped_column(primary_key=True)
    antecedent_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    consequent_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    customers: Mapped[int]
    support: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    lift: Mapped[float] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("antecedent_id", "consequent_id"),
        Index("ix_product_association_antecedent_lift", "antecedent_id", "lift"),
    )


class ProductPopularity(Base):
    """How many customers bought a product, and its rank in its category (1 = best-seller):
    the answer for customers and products without co-purchase history."""

    __tablename__ = "product_popularity"

    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), primary_key=True)
    category: Mapped[str] = mapped_column(String(32))
    customers: Mapped[int]
    category_rank: Mapped[int]
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_product_popularity_category_rank", "category", "category_rank"),
        Index("ix_product_popularity_customers", "customers"),
    )


class Segment(Base):
    """A saved segment: a name and its rule (the JSON language of ``bot.services.segments``)."""

    __tablename__ = "segment"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    rule: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_segment_created_at", "created_at"),)


# Segment conditions on colour ("bought a blue shirt") find the variants by colour first.
Index("ix_variant_colour", Variant.colour, Variant.product_id)
