from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.errors import OrderNotFound, VerificationFailed
from bot.models import Customer, Order
from bot.services.orders import (
    extract_last4,
    extract_order_number,
    order_status_for_customer,
    order_status_for_visitor,
)


def _customer(session: Session, external_id: str) -> Customer:
    return session.scalars(select(Customer).where(Customer.external_id == external_id)).one()


def test_latest_order_is_the_default(session: Session) -> None:
    customer = _customer(session, "C00001")
    latest = session.scalars(
        select(Order).where(Order.customer_id == customer.id).order_by(Order.placed_at.desc())
    ).first()
    assert latest is not None
    view = order_status_for_customer(session=session, customer_id=customer.id)
    assert view.order_number == latest.order_number
    assert view.items and view.items[0].name_en == "Navy blazer"


def test_named_order_must_belong_to_the_customer(session: Session) -> None:
    mine = _customer(session, "C00001")
    other = _customer(session, "C00002")
    their_order = session.scalars(select(Order).where(Order.customer_id == other.id)).first()
    assert their_order is not None
    with pytest.raises(OrderNotFound):
        order_status_for_customer(
            session=session, customer_id=mine.id, order_number=their_order.order_number
        )


def test_tracking_events_newest_first_and_limited(session: Session) -> None:
    shipped = session.scalars(select(Order).where(Order.status == "delivered")).first()
    assert shipped is not None
    view = order_status_for_customer(
        session=session,
        customer_id=shipped.customer_id,
        order_number=shipped.order_number,
        max_events=3,
    )
    times = [e.occurred_at for e in view.events]
    assert len(times) == 3
    assert times == sorted(times, reverse=True)
    assert view.delivered_at is not None


def test_late_shipment_carries_reason_and_new_estimate(session: Session) -> None:
    emily = _customer(session, "C00002")
    view = order_status_for_customer(session=session, customer_id=emily.id)
    assert view.delay_reason == "bad_weather"
    assert view.is_late
    assert view.estimated_at is not None and view.promised_at is not None
    assert view.estimated_at > view.promised_at


def test_visitor_needs_the_right_last_four_digits(session: Session) -> None:
    order = session.scalars(select(Order).order_by(Order.id)).first()
    assert order is not None
    view = order_status_for_visitor(
        session=session, order_number=order.order_number, phone_last4=order.phone[-4:]
    )
    assert view.order_number == order.order_number
    assert not hasattr(view, "address")
    wrong = "0000" if not order.phone.endswith("0000") else "1111"
    with pytest.raises(VerificationFailed):
        order_status_for_visitor(
            session=session, order_number=order.order_number, phone_last4=wrong
        )
    with pytest.raises(VerificationFailed):
        order_status_for_visitor(session=session, order_number=order.order_number, phone_last4="")


def test_unknown_order_number(session: Session) -> None:
    with pytest.raises(OrderNotFound):
        order_status_for_visitor(session=session, order_number="999999999999", phone_last4="1234")


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("订单号538872953711到哪了", "538872953711"),
        ("it's 5123456789012", "5123456789012"),
        ("尾号1234", None),
        ("no digits", None),
        ("12345678901234567890123", None),
    ],
)
def test_extract_order_number(text: str, number: str | None) -> None:
    assert extract_order_number(text) == number


@pytest.mark.parametrize(
    ("text", "digits"),
    [("尾号8899", "8899"), ("it's 4521 thanks", "4521"), ("12345", None), ("no", None)],
)
def test_extract_last4(text: str, digits: str | None) -> None:
    assert extract_last4(text) == digits
