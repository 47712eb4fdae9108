"""Order look-ups for the shopper-facing journeys.

An order is shown to its own logged-in customer, or to an anonymous visitor who gives the
order number and the last four digits of the order's phone number. The view never carries
the address or the buyer's name, so it is safe for either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.errors import OrderNotFound, VerificationFailed
from bot.models import Order, OrderItem, Shipment, Variant

ORDER_NUMBER_RE = re.compile(r"(?<!\d)(\d{8,20})(?!\d)")
LAST4_RE = re.compile(r"(?<!\d)(\d{4})(?!\d)")


@dataclass(frozen=True)
class TrackingEventView:
    occurred_at: datetime
    status: str
    location_zh: str
    location_en: str


@dataclass(frozen=True)
class OrderItemView:
    name_zh: str
    name_en: str
    size: str
    colour: str
    quantity: int


@dataclass(frozen=True)
class OrderStatusView:
    """What a shopper may learn about an order: no address, no buyer name."""

    order_number: str
    status: str
    placed_at: datetime
    total_fen: int
    items: tuple[OrderItemView, ...]
    carrier: str | None = None
    tracking_number: str | None = None
    shipment_status: str | None = None
    promised_at: datetime | None = None
    estimated_at: datetime | None = None
    delivered_at: datetime | None = None
    delay_reason: str | None = None
    events: tuple[TrackingEventView, ...] = ()

    @property
    def is_late(self) -> bool:
        """Estimated (or actual) arrival after the promised date."""
        if self.promised_at is None:
            return False
        arrival = self.delivered_at or self.estimated_at
        return arrival is not None and arrival > self.promised_at


def extract_order_number(text: str | None) -> str | None:
    """The first 8–20 digit run in ``text``, if any."""
    match = ORDER_NUMBER_RE.search(text or "")
    return match.group(1) if match else None


def extract_last4(text: str | None) -> str | None:
    """A standalone run of exactly four digits in ``text``, if any."""
    match = LAST4_RE.search(text or "")
    return match.group(1) if match else None


def _load(session: Session, *conditions: object) -> Order | None:
    stmt = (
        select(Order)
        .where(*conditions)  # type: ignore[arg-type]
        .options(
            selectinload(Order.items).selectinload(OrderItem.variant).selectinload(Variant.product),
            selectinload(Order.shipment).selectinload(Shipment.events),
        )
        .order_by(Order.placed_at.desc(), Order.id.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def _view(order: Order, *, max_events: int) -> OrderStatusView:
    items = tuple(
        OrderItemView(
            name_zh=item.variant.product.name_zh,
            name_en=item.variant.product.name_en,
            size=item.variant.size,
            colour=item.variant.colour,
            quantity=item.quantity,
        )
        for item in order.items
    )
    shipment = order.shipment
    if shipment is None:
        return OrderStatusView(
            order.order_number, order.status, order.placed_at, order.total_fen, items
        )
    events = tuple(
        TrackingEventView(e.occurred_at, e.status, e.location_zh, e.location_en)
        for e in sorted(shipment.events, key=lambda e: e.occurred_at, reverse=True)[:max_events]
    )
    return OrderStatusView(
        order_number=order.order_number,
        status=order.status,
        placed_at=order.placed_at,
        total_fen=order.total_fen,
        items=items,
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        shipment_status=shipment.status,
        promised_at=shipment.promised_at,
        estimated_at=shipment.estimated_at,
        delivered_at=shipment.delivered_at,
        delay_reason=shipment.delay_reason,
        events=events,
    )


def order_status_for_customer(
    *, session: Session, customer_id: int, order_number: str | None = None, max_events: int = 3
) -> OrderStatusView:
    """The customer's order ``order_number``, or their latest order.

    Raises ``OrderNotFound`` when the customer has no orders, or the number is not theirs.
    """
    conditions: list[object] = [Order.customer_id == customer_id]
    if order_number:
        conditions.append(Order.order_number == order_number)
    order = _load(session, *conditions)
    if order is None:
        raise OrderNotFound(order_number or "")
    return _view(order, max_events=max_events)


def order_exists(*, session: Session, order_number: str) -> bool:
    return session.scalar(select(Order.id).where(Order.order_number == order_number)) is not None


def order_status_for_visitor(
    *, session: Session, order_number: str, phone_last4: str, max_events: int = 3
) -> OrderStatusView:
    """An anonymous visitor's look-up, allowed only with the order phone's last four digits."""
    order = _load(session, Order.order_number == order_number)
    if order is None:
        raise OrderNotFound(order_number)
    if not phone_last4 or not order.phone.endswith(phone_last4):
        raise VerificationFailed(order_number)
    return _view(order, max_events=max_events)
