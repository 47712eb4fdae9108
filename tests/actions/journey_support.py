"""Helpers for the journey action tests: trackers with journey slots and metadata, and
customers with orders in a known state (each test takes its own, so tests stay
independent while sharing one seeded database)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import func, select

from bot.clock import utcnow
from bot.db import session_scope
from bot.models import Customer, Order, OrderItem, Outcome, Shipment, Variant
from tests.actions.conftest import make_tracker

_numbers = itertools.count(1)


def tracker(
    *,
    intent: str,
    text: str = "",
    customer_id: int | None = None,
    language: str = "zh",
    message_id: str | None = None,
    pending: str | None = None,
    detail: dict[str, Any] | None = None,
    entities: list[dict[str, Any]] | None = None,
    page: dict[str, Any] | None = None,
    slots: dict[str, Any] | None = None,
    ranking: list[dict[str, Any]] | None = None,
    events: list[dict[str, Any]] | None = None,
) -> Tracker:
    t = make_tracker(
        intent=intent,
        text=text,
        customer_id=customer_id,
        language=language,
        message_id=message_id or f"m-{next(_numbers)}",
        entities=entities,
        slots={"pending": pending, "pending_detail": detail, **(slots or {})},
    )
    if page is not None:
        t.latest_message["metadata"]["page"] = page
    if ranking is not None:
        t.latest_message["intent_ranking"] = ranking
    if events is not None:
        t.events = events
    return t


async def run(action: Any, **kwargs: Any) -> tuple[CollectingDispatcher, list[dict[str, Any]]]:
    """Run ``action`` on a tracker built from ``kwargs`` (see ``tracker``)."""
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker(**kwargs), {})
    return dispatcher, events


def entity(name: str, value: str) -> dict[str, Any]:
    return {"entity": name, "value": value}


def responses(dispatcher: CollectingDispatcher) -> list[str]:
    return [m["response"] for m in dispatcher.messages]


def slot(events: list[dict[str, Any]], name: str) -> Any:
    values = [e["value"] for e in events if e.get("event") == "slot" and e.get("name") == name]
    assert values, f"{name} not set"
    return values[-1]


def outcomes(message_id: str) -> list[str]:
    with session_scope() as s:
        return list(s.scalars(select(Outcome.kind).where(Outcome.message_id == message_id)))


def customer_id(external_id: str) -> int:
    with session_scope() as s:
        return s.scalars(select(Customer.id).where(Customer.external_id == external_id)).one()


def latest_order(cid: int) -> Order:
    with session_scope() as s:
        order = s.scalars(
            select(Order).where(Order.customer_id == cid).order_by(Order.placed_at.desc())
        ).first()
        assert order is not None
        return order


_taken: set[int] = set()


def customer_whose_latest_order(*, late: bool, shipped: bool) -> int:
    """A seeded customer not used by another test, whose latest order is open, late or not,
    and shipped or still waiting for pickup."""
    with session_scope() as s:
        latest = (
            select(Order.customer_id, func.max(Order.placed_at).label("placed"))
            .group_by(Order.customer_id)
            .subquery()
        )
        rows = s.execute(
            select(
                Order.customer_id,
                Order.status,
                Shipment.status,
                Shipment.estimated_at,
                Shipment.promised_at,
            )
            .join(
                latest,
                (latest.c.customer_id == Order.customer_id) & (latest.c.placed == Order.placed_at),
            )
            .join(Shipment, Shipment.order_id == Order.id)
            .where(Order.status == ("shipped" if shipped else "paid"))
            .order_by(Order.customer_id)
        ).all()
    for cid, _status, ship_status, estimated, promised in rows:
        is_late = estimated is not None and estimated > promised
        unshipped = ship_status == "awaiting_pickup"
        if cid in _taken or is_late != late or unshipped == shipped or cid <= 4:
            continue
        _taken.add(cid)
        return int(cid)
    raise AssertionError("no such customer in the seed")


def new_delivered_order(sku: str, *, days_ago: float = 2, quantity: int = 1) -> tuple[int, str]:
    """A new customer with one order of ``sku`` delivered ``days_ago`` days before now."""
    n = next(_numbers)
    with session_scope() as s:
        variant = s.scalars(select(Variant).where(Variant.sku == sku)).one()
        customer = Customer(external_id=f"JT{n:05d}", name=f"测试{n}", language="zh")
        delivered = utcnow() - timedelta(days=days_ago)
        order = Order(
            order_number=f"8{n:011d}",
            customer=customer,
            status="delivered",
            total_fen=variant.price_fen * quantity,
            phone="13900000000",
            address="杭州市西湖区1号",
            placed_at=delivered - timedelta(days=3),
            paid_at=delivered - timedelta(days=3),
        )
        order.items.append(
            OrderItem(variant=variant, quantity=quantity, unit_price_fen=variant.price_fen)
        )
        order.shipment = Shipment(
            carrier="zto",
            status="delivered",
            promised_at=delivered,
            estimated_at=delivered,
            shipped_at=delivered - timedelta(days=2),
            delivered_at=delivered,
        )
        s.add(order)
        s.flush()
        return customer.id, order.order_number


def set_stock(sku: str, stock: int) -> None:
    with session_scope() as s:
        s.scalars(select(Variant).where(Variant.sku == sku)).one().stock = stock


__all__ = ["SlotSet"]
