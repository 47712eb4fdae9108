"""The delay script and cancellation, every branch, and retries of one message acting once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from actions.cancel import ActionCancelOrder, ActionDismissPending, ActionOfferCancellation
from actions.delay import (
    ActionAcceptDelay,
    ActionApplyDelayRemedy,
    ActionDeclineDelay,
    ActionExplainShippingDelay,
)
from bot.db import session_scope
from bot.models import Coupon, Order
from bot.services import consent
from tests.actions.journey_support import (
    customer_id,
    customer_whose_latest_order,
    entity,
    latest_order,
    outcomes,
    responses,
    run,
    slot,
)


async def test_an_anonymous_visitor_proves_the_phone_digits_first(app_db: str) -> None:
    dispatcher, events = await run(ActionExplainShippingDelay(), intent="shipping_delay")
    assert dispatcher.messages == []  # order_status_form asks; nothing is shown yet
    assert slot(events, "pending") == "order_lookup"


async def test_anonymous_visitors_are_asked_to_log_in(app_db: str) -> None:
    for action in (ActionOfferCancellation(), ActionAcceptDelay(), ActionDeclineDelay()):
        dispatcher, events = await run(action, intent="shipping_delay")
        assert responses(dispatcher) == ["utter_login_required"]
        assert slot(events, "pending") is None


async def test_late_unshipped_order_apology_reason_estimate_and_question(app_db: str) -> None:
    cid = customer_id("C00003")
    dispatcher, events = await run(
        ActionExplainShippingDelay(), intent="shipping_delay", customer_id=cid
    )
    assert responses(dispatcher) == ["utter_delay_explained_unshipped", "utter_ask_accept_delay"]
    explained = dispatcher.messages[0]
    assert explained["delay_reason"] == "快递公司暂停揽收"
    assert explained["estimated"] and explained["order_number"] == latest_order(cid).order_number
    assert slot(events, "pending") == "delay_acceptance"
    assert slot(events, "pending_detail")["shipped"] is False


async def test_late_shipped_order_in_english(app_db: str) -> None:
    cid = customer_id("C00002")
    dispatcher, events = await run(
        ActionExplainShippingDelay(), intent="shipping_delay", customer_id=cid, language="en"
    )
    assert responses(dispatcher) == [
        "utter_delay_explained_shipped",
        "utter_ask_accept_late_delivery",
    ]
    assert dispatcher.messages[0]["delay_reason"] == "bad weather"
    assert slot(events, "pending_detail")["shipped"] is True


async def test_an_order_on_time_is_reassured(app_db: str) -> None:
    dispatcher, events = await run(
        ActionExplainShippingDelay(), intent="shipping_delay", customer_id=customer_id("C00001")
    )
    assert responses(dispatcher) == ["utter_delay_on_time"]
    assert slot(events, "pending") is None


async def test_unknown_and_other_customers_orders(app_db: str) -> None:
    other = latest_order(customer_id("C00003")).order_number
    for number in ("599999999999", other):
        dispatcher, _ = await run(
            ActionExplainShippingDelay(),
            intent="shipping_delay",
            customer_id=customer_id("C00001"),
            text=f"订单{number}怎么还没到",
            entities=[entity("order_number", number)],
        )
        assert responses(dispatcher) == ["utter_order_not_found"]
        assert dispatcher.messages[0]["order_number"] == number


async def test_accepting_the_delay_is_recorded_once_on_retry(app_db: str) -> None:
    cid = customer_whose_latest_order(late=True, shipped=False)
    number = latest_order(cid).order_number
    detail = {"order_number": number, "shipped": False, "total_fen": 100}
    for _ in range(2):  # the same message, retried
        dispatcher, events = await run(
            ActionAcceptDelay(),
            intent="affirm",
            customer_id=cid,
            message_id="accept-1",
            pending="delay_acceptance",
            detail=detail,
        )
        assert responses(dispatcher) == ["utter_delay_accepted"]
        assert slot(events, "pending") is None
    assert outcomes("accept-1") == ["delay_accepted"]
    assert latest_order(cid).delay_accepted_at is not None


async def test_declining_offers_cancel_or_coupon(app_db: str) -> None:
    detail = {"order_number": "x", "shipped": False, "total_fen": 45900}
    dispatcher, events = await run(
        ActionDeclineDelay(),
        intent="deny",
        customer_id=customer_id("C00003"),
        pending="delay_acceptance",
        detail=detail,
    )
    assert responses(dispatcher) == ["utter_delay_offer_remedies"]
    assert dispatcher.messages[0]["refund"] == "¥459.00"
    assert dispatcher.messages[0]["coupon"] == "¥20.00"
    assert slot(events, "pending") == "delay_remedy"
    shipped, _ = await run(
        ActionDeclineDelay(),
        intent="deny",
        customer_id=customer_id("C00002"),
        detail={**detail, "shipped": True},
    )
    assert responses(shipped) == ["utter_delay_offer_remedies_shipped"]


async def test_delay_remedy_cancel_refunds_in_full_once(app_db: str) -> None:
    cid = customer_whose_latest_order(late=True, shipped=False)
    order = latest_order(cid)
    detail = {"order_number": order.order_number, "shipped": False, "total_fen": order.total_fen}
    for _ in range(2):
        dispatcher, _ = await run(
            ActionApplyDelayRemedy(),
            intent="cancel_order",
            customer_id=cid,
            message_id="remedy-cancel",
            pending="delay_remedy",
            detail=detail,
        )
        assert responses(dispatcher) == ["utter_order_cancelled"]
    assert outcomes("remedy-cancel") == ["cancelled"]
    assert latest_order(cid).status == "cancelled"


async def test_delay_remedy_for_a_parcel_on_its_way_is_refusal_with_refund(app_db: str) -> None:
    cid = customer_whose_latest_order(late=True, shipped=True)
    order = latest_order(cid)
    dispatcher, _ = await run(
        ActionApplyDelayRemedy(),
        intent="cancel_order",
        customer_id=cid,
        message_id="remedy-refuse",
        detail={"order_number": order.order_number, "shipped": True},
    )
    assert responses(dispatcher) == ["utter_refund_on_refusal"]
    assert outcomes("remedy-refuse") == ["refund_on_refusal"]
    assert latest_order(cid).status == "shipped"


async def test_delay_remedy_coupon_is_issued_once(app_db: str) -> None:
    cid = customer_whose_latest_order(late=True, shipped=True)
    order = latest_order(cid)
    for _ in range(2):
        dispatcher, _ = await run(
            ActionApplyDelayRemedy(),
            intent="coupon_promotion",
            customer_id=cid,
            message_id="remedy-coupon",
            detail={"order_number": order.order_number, "shipped": True},
        )
        assert responses(dispatcher) == ["utter_delay_coupon_issued"]
        assert dispatcher.messages[0]["amount"] == "¥20.00"
    with session_scope() as s:
        coupons = s.scalars(select(Coupon).where(Coupon.order_id == order.id)).all()
    assert len(coupons) == 1 and coupons[0].customer_id == cid
    assert outcomes("remedy-coupon") == ["coupon_issued"]


async def test_delay_remedy_refused_changes_nothing(app_db: str) -> None:
    dispatcher, events = await run(
        ActionApplyDelayRemedy(),
        intent="deny",
        customer_id=customer_id("C00002"),
        message_id="remedy-none",
        detail={"order_number": "1", "shipped": True},
    )
    assert responses(dispatcher) == ["utter_nothing_changed"]
    assert outcomes("remedy-none") == [] and slot(events, "pending") is None


async def test_cancel_unshipped_asks_then_cancels_once(app_db: str) -> None:
    cid = customer_whose_latest_order(late=False, shipped=False)
    order = latest_order(cid)
    dispatcher, events = await run(
        ActionOfferCancellation(), intent="cancel_order", customer_id=cid
    )
    assert responses(dispatcher) == ["utter_confirm_cancel"]
    assert dispatcher.messages[0]["refund"] == f"¥{order.total_fen / 100:,.2f}"
    assert slot(events, "pending") == "cancel_confirm"
    detail = slot(events, "pending_detail")
    for _ in range(2):
        done, _ = await run(
            ActionCancelOrder(),
            intent="affirm",
            customer_id=cid,
            message_id="cancel-yes",
            pending="cancel_confirm",
            detail=detail,
        )
        assert responses(done) == ["utter_order_cancelled"]
    assert outcomes("cancel-yes") == ["cancelled"]
    # Asked again with a new message, the order is already closed.
    again, _ = await run(
        ActionCancelOrder(), intent="affirm", customer_id=cid, detail=detail, message_id="cancel-2"
    )
    assert responses(again) == ["utter_cannot_cancel_closed"]
    assert outcomes("cancel-2") == []


async def test_a_shipped_order_is_explained_and_a_return_offered(app_db: str) -> None:
    dispatcher, events = await run(
        ActionOfferCancellation(), intent="cancel_order", customer_id=customer_id("C00002")
    )
    assert responses(dispatcher) == ["utter_cannot_cancel_shipped"]
    assert slot(events, "pending") is None


async def test_a_delivered_or_closed_order_cannot_be_cancelled(app_db: str) -> None:
    zhang = customer_id("C00001")
    with session_scope() as s:
        delivered = s.scalars(
            select(Order.order_number).where(
                Order.customer_id == zhang, Order.status == "delivered"
            )
        ).first()
    dispatcher, _ = await run(
        ActionOfferCancellation(),
        intent="cancel_order",
        customer_id=zhang,
        text=f"取消订单{delivered}",
    )
    assert responses(dispatcher) == ["utter_cannot_cancel_delivered"]


async def test_cancellation_called_off(app_db: str) -> None:
    dispatcher, events = await run(
        ActionDismissPending(),
        intent="deny",
        customer_id=customer_id("C00001"),
        pending="cancel_confirm",
    )
    assert responses(dispatcher) == ["utter_nothing_changed"]
    assert slot(events, "pending") is None


async def test_a_racing_retry_finds_what_the_first_run_recorded(app_db: str) -> None:
    """Two runs of one message at once: the loser hits the unique outcome key, rolls back,
    runs again and replays the winner's result."""
    from sqlalchemy.exc import IntegrityError

    from actions.common import in_session
    from bot.services.orders import accept_delay
    from bot.services.outcomes import Turn

    cid = customer_whose_latest_order(late=True, shipped=True)
    number = latest_order(cid).order_number
    turn = Turn(message_id="race-1", customer_id=cid)
    await in_session(lambda s: accept_delay(session=s, turn=turn, order_number=number))
    calls = []

    def racing(session: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise IntegrityError("INSERT INTO outcome", {}, Exception("unique"))
        return accept_delay(session=session, turn=turn, order_number=number)

    change = await in_session(racing)
    assert change.replayed and len(calls) == 2
    assert outcomes("race-1") == ["delay_accepted"]


async def test_accepting_the_delay_brings_one_offer_to_a_consenting_shopper(app_db: str) -> None:
    """李娜 bought a blue shirt and a red tie: once she consented to marketing, accepting the
    delay is followed by the navy jacket; without consent there is no offer."""
    cid = customer_id("C00003")
    number = latest_order(cid).order_number
    detail = {"order_number": number, "shipped": False, "total_fen": 100}
    plain, _ = await run(
        ActionAcceptDelay(),
        intent="affirm",
        customer_id=cid,
        message_id="offer-0",
        pending="delay_acceptance",
        detail=detail,
    )
    assert responses(plain) == ["utter_delay_accepted"]
    with session_scope() as session:
        consent.grant(session=session, customer_id=cid, source="widget")
    try:
        offered, _ = await run(
            ActionAcceptDelay(),
            intent="affirm",
            customer_id=cid,
            message_id="offer-1",
            pending="delay_acceptance",
            detail=detail,
            language="en",
        )
    finally:
        with session_scope() as session:
            consent.withdraw(session=session, customer_id=cid, source="widget")
    assert responses(offered) == ["utter_delay_accepted", "utter_offer_after_journey"]
    assert offered.messages[1]["product"].startswith("Navy blazer ¥")
    assert outcomes("offer-1") == ["delay_accepted", "recommendation_offered"]
