from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.db import make_engine
from bot.models import Base, Customer, Order, OrderItem, Product, Shipment, Variant
from bot.seed import seed_demo_store
from tests.conftest import FIXED_NOW


def _count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_demo_store_meets_its_promised_size(session: Session) -> None:
    assert _count(session, Customer) >= 500
    assert _count(session, Variant) >= 200
    assert _count(session, Order) == 2000
    categories = set(session.scalars(select(Product.category)))
    assert {"shirt", "tie", "jacket", "trousers"} <= categories


def test_names_in_both_languages_and_prices_in_cny(session: Session) -> None:
    languages = set(session.scalars(select(Customer.language)))
    assert languages == {"zh", "en"}
    prices = list(session.scalars(select(Variant.price_fen)))
    assert all(p > 0 and p % 100 == 0 for p in prices)


def test_orders_span_the_last_90_days(session: Session) -> None:
    oldest = session.scalar(select(func.min(Order.placed_at)))
    newest = session.scalar(select(func.max(Order.placed_at)))
    assert oldest is not None and newest is not None
    assert (FIXED_NOW - oldest).days <= 90
    assert newest <= FIXED_NOW


def test_some_shipments_are_late_with_a_reason(session: Session) -> None:
    late = session.scalars(select(Shipment).where(Shipment.delay_reason.is_not(None))).all()
    assert len(late) >= 50
    assert {s.delay_reason for s in late} >= {"bad_weather", "courier_suspension"}


def test_blue_shirt_and_red_tie_buyers_exist(session: Session) -> None:
    def buyers(sku_prefix: str) -> set[int]:
        rows = session.scalars(
            select(Order.customer_id)
            .join(OrderItem)
            .join(Variant)
            .where(Variant.sku.like(f"{sku_prefix}%"))
        )
        return set(rows)

    both = buyers("P-OXF-BLUE-") & buyers("P-SLK-RED-")
    jacket = buyers("P-BLZ-NAVY-")
    assert len(both) >= 100
    assert 0 < len(both - jacket) < len(both)


def _fingerprint() -> list[tuple[str, int, str, str | None]]:
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        seed_demo_store(session=session, clock=lambda: FIXED_NOW)
        rows = session.execute(
            select(Order.order_number, Order.total_fen, Order.status, Shipment.delay_reason)
            .outerjoin(Shipment)
            .order_by(Order.order_number)
        ).all()
    engine.dispose()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_seed_is_deterministic() -> None:
    assert _fingerprint() == _fingerprint()


def test_seed_refuses_a_second_run(session: Session) -> None:
    with pytest.raises(RuntimeError):
        seed_demo_store(session=session, clock=lambda: FIXED_NOW)
