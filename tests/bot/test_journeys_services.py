"""Services behind the service journeys: the delay script, cancellation, coupons, order
changes, outcomes and their idempotency on the Rasa message id."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.errors import OrderNotCancellable, OrderNotFound, OrderNotModifiable
from bot.models import Coupon, Customer, Order, Outcome, Shipment
from bot.services.coupons import active_promotions, coupons_for_customer, issue_delay_coupon
from bot.services.orders import (
    accept_delay,
    cancel_order,
    change_order,
    delayed_order_for_customer,
)
from bot.services.outcomes import Turn, outcomes_for_customer, record_complaint
from bot.settings import Settings
from tests.conftest import FIXED_NOW, fixed_clock


def _customer(session: Session, external_id: str) -> Customer:
    return session.scalars(select(Customer).where(Customer.external_id == external_id)).one()


def _latest(session: Session, customer: Customer) -> Order:
    order = session.scalars(
        select(Order).where(Order.customer_id == customer.id).order_by(Order.placed_at.desc())
    ).first()
    assert order is not None
    return order


def _outcomes(session: Session, message_id: str) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(Outcome).where(Outcome.message_id == message_id)
        )
        or 0
    )


def test_the_late_order_is_the_one_a_delay_message_is_about(session: Session) -> None:
    lina = _customer(session, "C00003")
    view = delayed_order_for_customer(session=session, customer_id=lina.id)
    assert view.is_late and view.delay_reason == "courier_suspension"
    assert view.can_cancel


def test_accepting_a_delay_is_recorded_once(session: Session) -> None:
    emily = _customer(session, "C00002")
    order = _latest(session, emily)
    turn = Turn(message_id="msg-accept", customer_id=emily.id, conversation_id="c1")
    first = accept_delay(
        session=session, turn=turn, order_number=order.order_number, clock=fixed_clock
    )
    again = accept_delay(
        session=session, turn=turn, order_number=order.order_number, clock=fixed_clock
    )
    assert not first.replayed and again.replayed
    assert order.delay_accepted_at == FIXED_NOW
    assert _outcomes(session, "msg-accept") == 1
    kinds = [o.kind for o in outcomes_for_customer(session=session, customer_id=emily.id)]
    assert kinds == ["delay_accepted"]


def test_another_customers_order_is_not_found(session: Session) -> None:
    emily = _customer(session, "C00002")
    lina = _customer(session, "C00003")
    theirs = _latest(session, lina)
    turn = Turn(message_id="msg-x", customer_id=emily.id)
    with pytest.raises(OrderNotFound):
        accept_delay(session=session, turn=turn, order_number=theirs.order_number)
    with pytest.raises(OrderNotFound):
        cancel_order(session=session, turn=turn, order_number=theirs.order_number)


def test_cancelling_an_unshipped_order_refunds_in_full_once(session: Session) -> None:
    lina = _customer(session, "C00003")
    order = _latest(session, lina)
    turn = Turn(message_id="msg-cancel", customer_id=lina.id)
    result = cancel_order(
        session=session, turn=turn, order_number=order.order_number, clock=fixed_clock
    )
    assert result.refund_fen == order.total_fen and not result.replayed
    assert order.status == "cancelled" and order.cancelled_at == FIXED_NOW
    retried = cancel_order(session=session, turn=turn, order_number=order.order_number)
    assert retried.replayed and retried.refund_fen == order.total_fen
    assert _outcomes(session, "msg-cancel") == 1
    # A new message for the same, now cancelled order is refused, not repeated.
    with pytest.raises(OrderNotCancellable) as err:
        cancel_order(
            session=session, turn=Turn("msg-cancel-2", lina.id), order_number=order.order_number
        )
    assert err.value.status == "cancelled"


def test_a_shipped_order_cannot_be_cancelled(session: Session) -> None:
    emily = _customer(session, "C00002")
    order = _latest(session, emily)
    with pytest.raises(OrderNotCancellable) as err:
        cancel_order(session=session, turn=Turn("msg-s", emily.id), order_number=order.order_number)
    assert err.value.status == "shipped"
    assert order.status == "shipped"


def test_delay_coupon_follows_the_configured_policy_once_per_order(session: Session) -> None:
    emily = _customer(session, "C00002")
    order = _latest(session, emily)
    policy = Settings(delay_coupon_fen=1500, delay_coupon_valid_days=10)
    turn = Turn(message_id="msg-coupon", customer_id=emily.id)
    coupon = issue_delay_coupon(
        session=session,
        turn=turn,
        order_number=order.order_number,
        settings=policy,
        clock=fixed_clock,
    )
    assert coupon.amount_fen == 1500 and coupon.expires_at == FIXED_NOW + timedelta(days=10)
    again = issue_delay_coupon(
        session=session, turn=turn, order_number=order.order_number, settings=policy
    )
    other_message = issue_delay_coupon(
        session=session,
        turn=Turn("msg-coupon-2", emily.id),
        order_number=order.order_number,
        settings=policy,
    )
    assert again.replayed and again.code == coupon.code
    assert other_message.replayed and other_message.code == coupon.code
    count = session.scalar(
        select(func.count()).select_from(Coupon).where(Coupon.order_id == order.id)
    )
    assert count == 1
    held = coupons_for_customer(session=session, customer_id=emily.id, clock=fixed_clock)
    assert coupon.code in {c.code for c in held}


def test_promotions_respect_membership_level(session: Session) -> None:
    lina = _customer(session, "C00003")  # regular
    zhang = _customer(session, "C00001")  # gold
    regular = {
        p.code for p in active_promotions(session=session, customer_id=lina.id, clock=fixed_clock)
    }
    gold = {
        p.code for p in active_promotions(session=session, customer_id=zhang.id, clock=fixed_clock)
    }
    assert "GOLD50" not in regular and "GOLD50" in gold
    assert {"FULL300", "FULL800"} <= regular


def test_address_changes_only_before_shipping(session: Session) -> None:
    lina = _customer(session, "C00003")
    order = _latest(session, lina)
    turn = Turn(message_id="msg-addr", customer_id=lina.id)
    change_order(
        session=session, turn=turn, order_number=order.order_number, address="上海市静安区1号"
    )
    retried = change_order(
        session=session, turn=turn, order_number=order.order_number, address="上海市静安区1号"
    )
    assert order.address == "上海市静安区1号" and retried.replayed
    emily = _customer(session, "C00002")
    with pytest.raises(OrderNotModifiable):
        change_order(
            session=session,
            turn=Turn("msg-addr-2", emily.id),
            order_number=_latest(session, emily).order_number,
            note="放门口",
        )


def test_a_complaint_is_recorded_once_per_message(session: Session) -> None:
    zhang = _customer(session, "C00001")
    turn = Turn(message_id="msg-complaint", customer_id=zhang.id)
    assert record_complaint(session=session, turn=turn, text="质量太差了")
    assert not record_complaint(session=session, turn=turn, text="质量太差了")
    assert _outcomes(session, "msg-complaint") == 1


def test_seeded_unshipped_orders_wait_for_pickup(session: Session) -> None:
    lina = _customer(session, "C00003")
    shipment = session.scalars(
        select(Shipment).where(Shipment.order_id == _latest(session, lina).id)
    ).one()
    assert shipment.status == "awaiting_pickup" and shipment.shipped_at is None
