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

from bot.clock import Clock, utcnow
from bot.errors import OrderNotCancellable, OrderNotFound, OrderNotModifiable, VerificationFailed
from bot.models import Order, OrderItem, Shipment, Variant
from bot.services.outcomes import Turn, record, replay

OPEN_STATUSES = ("pending_payment", "paid", "shipped")

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
    def can_cancel(self) -> bool:
        """Not yet handed to the courier: cancelling needs no parcel back."""
        return self.status in ("pending_payment", "paid") and self.shipment_status in (
            None,
            "awaiting_pickup",
        )

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


@dataclass(frozen=True)
class OrderChange:
    """What a journey changed on an order; ``replayed`` when this message had already done it."""

    order_number: str
    kind: str
    refund_fen: int = 0
    replayed: bool = False


def delayed_order_for_customer(
    *, session: Session, customer_id: int, order_number: str | None = None
) -> OrderStatusView:
    """The order a "where is it, it's late" message is about: the one named, else the
    customer's latest open order that is late, else their latest open order, else their
    latest order. Raises ``OrderNotFound``."""
    if order_number:
        return order_status_for_customer(
            session=session, customer_id=customer_id, order_number=order_number
        )
    stmt = (
        select(Order)
        .where(Order.customer_id == customer_id, Order.status.in_(OPEN_STATUSES))
        .options(
            selectinload(Order.items).selectinload(OrderItem.variant).selectinload(Variant.product),
            selectinload(Order.shipment).selectinload(Shipment.events),
        )
        .order_by(Order.placed_at.desc(), Order.id.desc())
        .limit(10)
    )
    views = [_view(o, max_events=3) for o in session.scalars(stmt)]
    late = [v for v in views if v.is_late]
    if late:
        return late[0]
    if views:
        return views[0]
    return order_status_for_customer(session=session, customer_id=customer_id)


def _own_order(session: Session, customer_id: int, order_number: str) -> Order:
    order = session.scalars(
        select(Order)
        .where(Order.customer_id == customer_id, Order.order_number == order_number)
        .options(selectinload(Order.shipment))
    ).first()
    if order is None:
        raise OrderNotFound(order_number)
    return order


def accept_delay(
    *, session: Session, turn: Turn, order_number: str, clock: Clock = utcnow
) -> OrderChange:
    """The shopper accepts the late delivery: noted on the order and as an outcome."""
    if turn.customer_id is None:
        raise OrderNotFound(order_number)
    done = replay(session=session, turn=turn, kind="delay_accepted")
    if done is not None:
        return OrderChange(done["order_number"], "delay_accepted", replayed=True)
    order = _own_order(session, turn.customer_id, order_number)
    order.delay_accepted_at = clock()
    record(
        session=session,
        turn=turn,
        kind="delay_accepted",
        order_id=order.id,
        detail={
            "order_number": order.order_number,
            "delay_reason": order.shipment.delay_reason if order.shipment else None,
        },
        clock=clock,
    )
    return OrderChange(order.order_number, "delay_accepted")


def cancel_order(
    *,
    session: Session,
    turn: Turn,
    order_number: str,
    reason: str = "shopper_request",
    clock: Clock = utcnow,
) -> OrderChange:
    """Cancel an order the courier has not picked up yet, with a full refund of what was
    paid. Raises ``OrderNotCancellable`` (with the order's status) otherwise."""
    if turn.customer_id is None:
        raise OrderNotFound(order_number)
    done = replay(session=session, turn=turn, kind="cancelled")
    if done is not None:
        return OrderChange(
            done["order_number"], "cancelled", refund_fen=done["refund_fen"], replayed=True
        )
    order = _own_order(session, turn.customer_id, order_number)
    shipment = order.shipment
    view_status = shipment.status if shipment else None
    if order.status not in ("pending_payment", "paid") or view_status not in (
        None,
        "awaiting_pickup",
    ):
        status = "shipped" if order.status == "paid" else order.status
        raise OrderNotCancellable(order.order_number, status)
    refund = order.total_fen if order.paid_at is not None else 0
    order.status = "cancelled"
    order.cancelled_at = clock()
    record(
        session=session,
        turn=turn,
        kind="cancelled",
        order_id=order.id,
        detail={"order_number": order.order_number, "refund_fen": refund, "reason": reason},
        clock=clock,
    )
    return OrderChange(order.order_number, "cancelled", refund_fen=refund)


def change_order(
    *,
    session: Session,
    turn: Turn,
    order_number: str,
    address: str | None = None,
    note: str | None = None,
    clock: Clock = utcnow,
) -> OrderChange:
    """Change the delivery address or the note of an order that has not left the warehouse.
    Raises ``OrderNotModifiable`` otherwise."""
    if turn.customer_id is None:
        raise OrderNotFound(order_number)
    kind = "address_changed" if address else "note_changed"
    done = replay(session=session, turn=turn, kind=kind)
    if done is not None:
        return OrderChange(done["order_number"], kind, replayed=True)
    order = _own_order(session, turn.customer_id, order_number)
    shipment = order.shipment
    if order.status not in ("pending_payment", "paid") or (
        shipment is not None and shipment.status != "awaiting_pickup"
    ):
        status = "shipped" if order.status == "paid" else order.status
        raise OrderNotModifiable(order.order_number, status)
    if address:
        order.address = address[:300]
    if note:
        order.note = note[:300]
    record(
        session=session,
        turn=turn,
        kind=kind,
        order_id=order.id,
        detail={"order_number": order.order_number},
        clock=clock,
    )
    return OrderChange(order.order_number, kind)


def promise_refund_on_refusal(
    *, session: Session, turn: Turn, order_number: str, clock: Clock = utcnow
) -> OrderChange:
    """A late parcel already on its way cannot be stopped: the shopper may refuse it, and it
    is refunded in full once it is back. Recorded as an outcome so agents and the warehouse
    see the promise."""
    if turn.customer_id is None:
        raise OrderNotFound(order_number)
    done = replay(session=session, turn=turn, kind="refund_on_refusal")
    if done is not None:
        return OrderChange(
            done["order_number"], "refund_on_refusal", refund_fen=done["refund_fen"], replayed=True
        )
    order = _own_order(session, turn.customer_id, order_number)
    record(
        session=session,
        turn=turn,
        kind="refund_on_refusal",
        order_id=order.id,
        detail={"order_number": order.order_number, "refund_fen": order.total_fen},
        clock=clock,
    )
    return OrderChange(order.order_number, "refund_on_refusal", refund_fen=order.total_fen)
