"""The store's data: customers, catalogue, orders and shipments.

Money is kept in integer fen (1/100 CNY). ``external_id`` is the store's own id for a row,
the key that ingestion upserts by.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, false, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.models.base import Base, UTCDateTime


class Customer(Base):
    __tablename__ = "customer"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8), default="zh")
    membership_level: Mapped[str] = mapped_column(String(16), default="regular")
    points: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())

    orders: Mapped[list[Order]] = relationship(back_populates="customer")


class Product(Base):
    __tablename__ = "product"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32), index=True)
    material: Mapped[str | None] = mapped_column(String(100))
    description_zh: Mapped[str | None] = mapped_column(String(1000))
    description_en: Mapped[str | None] = mapped_column(String(1000))
    # Made to the shopper's order: never a 7-day no-reason return.
    customised: Mapped[bool] = mapped_column(default=False, server_default=false())

    variants: Mapped[list[Variant]] = relationship(back_populates="product")


class Variant(Base):
    __tablename__ = "variant"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    size: Mapped[str] = mapped_column(String(16))
    colour: Mapped[str] = mapped_column(String(32))
    price_fen: Mapped[int]
    stock: Mapped[int] = mapped_column(default=0)

    product: Mapped[Product] = relationship(back_populates="variants")


class Order(Base):
    __tablename__ = "order"  # quoted by SQLAlchemy; singular like every table

    id: Mapped[int] = mapped_column(primary_key=True)
    order_number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    status: Mapped[str] = mapped_column(String(24))
    total_fen: Mapped[int]
    phone: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(300))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(String(300))
    delay_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    customer: Mapped[Customer] = relationship(back_populates="orders")
    items: Mapped[list[OrderItem]] = relationship(back_populates="order")
    shipment: Mapped[Shipment | None] = relationship(back_populates="order", uselist=False)

    __table_args__ = (Index("ix_order_customer_placed", "customer_id", "placed_at"),)


class OrderItem(Base):
    __tablename__ = "order_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variant.id"), index=True)
    quantity: Mapped[int]
    unit_price_fen: Mapped[int]

    order: Mapped[Order] = relationship(back_populates="items")
    variant: Mapped[Variant] = relationship()


class Shipment(Base):
    __tablename__ = "shipment"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), unique=True)
    carrier: Mapped[str] = mapped_column(String(32))
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24))
    promised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    estimated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delay_reason: Mapped[str | None] = mapped_column(String(32))

    order: Mapped[Order] = relationship(back_populates="shipment")
    events: Mapped[list[ShipmentEvent]] = relationship(
        back_populates="shipment", order_by="ShipmentEvent.occurred_at"
    )


class ShipmentEvent(Base):
    __tablename__ = "shipment_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipment.id"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(24))
    location_zh: Mapped[str] = mapped_column(String(100))
    location_en: Mapped[str] = mapped_column(String(100))

    shipment: Mapped[Shipment] = relationship(back_populates="events")

    __table_args__ = (
        Index("ix_shipment_event_shipment_time", "shipment_id", "occurred_at"),
        UniqueConstraint("shipment_id", "occurred_at", "status"),
    )
