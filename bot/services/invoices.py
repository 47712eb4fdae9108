"""Invoice requests: the title (抬头) and tax id (税号) for an order, recorded once per message
as an outcome that the finance team works from."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import Clock, utcnow
from bot.errors import OrderNotFound
from bot.models import Order
from bot.services.outcomes import Turn, record, replay

TAX_ID = re.compile(r"^[0-9A-Z]{15,20}$")
PERSONAL_TITLES = ("个人", "personal", "individual", "me", "myself")


@dataclass(frozen=True)
class InvoiceRequest:
    order_number: str
    title: str
    tax_id: str | None
    replayed: bool = False


def normalise_tax_id(text: str | None) -> str | None:
    """A tax id (unified social credit code, 15–20 letters and digits) or None."""
    value = re.sub(r"[\s-]", "", text or "").upper()
    return value if TAX_ID.match(value) else None


def is_personal(title: str | None) -> bool:
    return (title or "").strip().lower() in PERSONAL_TITLES


def record_invoice_request(
    *,
    session: Session,
    turn: Turn,
    title: str,
    tax_id: str | None,
    order_number: str | None = None,
    clock: Clock = utcnow,
) -> InvoiceRequest:
    """Record the request for the order named, else the customer's latest paid order."""
    if turn.customer_id is None:
        raise OrderNotFound(order_number or "")
    done = replay(session=session, turn=turn, kind="invoice_requested")
    if done is not None:
        return InvoiceRequest(done["order_number"], done["title"], done["tax_id"], replayed=True)
    stmt = select(Order).where(
        Order.customer_id == turn.customer_id, Order.status.in_(("paid", "shipped", "delivered"))
    )
    if order_number:
        stmt = stmt.where(Order.order_number == order_number)
    order = session.scalars(stmt.order_by(Order.placed_at.desc(), Order.id.desc())).first()
    if order is None:
        raise OrderNotFound(order_number or "")
    record(
        session=session,
        turn=turn,
        kind="invoice_requested",
        order_id=order.id,
        detail={"order_number": order.order_number, "title": title[:100], "tax_id": tax_id},
        clock=clock,
    )
    return InvoiceRequest(order.order_number, title[:100], tax_id)
