"""The store's shipping-delay script.

A sincere apology, the real reason from the shipment and the new estimate, then
请问是否可以接受延迟发货？ Yes: noted on the order and as an outcome, and a promise to ship first
when pickup resumes. No: cancel with a full refund (or, once the parcel is on its way,
refuse it for a full refund), or a compensation coupon under the store's policy.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (
    conversation_turn,
    customer_id,
    date,
    first_entity,
    in_session,
    item_text,
    joined,
    language,
    latest_text,
    money,
    pending,
    pending_detail,
)
from actions.products import offer_after_journey
from bot.errors import OrderNotCancellable, OrderNotFound
from bot.labels import label
from bot.services.coupons import issue_delay_coupon
from bot.services.orders import (
    OrderStatusView,
    accept_delay,
    cancel_order,
    delayed_order_for_customer,
    extract_order_number,
    order_status_for_customer,
    promise_refund_on_refusal,
)
from bot.settings import get_settings


def named_order(tracker: Tracker) -> str | None:
    """The order number the shopper gave in this message, if any."""
    entity = first_entity(tracker, "order_number")
    return (
        extract_order_number(str(entity)) if entity else extract_order_number(latest_text(tracker))
    )


def order_values(view: OrderStatusView, lang: str) -> dict[str, Any]:
    return {
        "order_number": view.order_number,
        "items": joined(
            [
                item_text(i.name_zh, i.name_en, i.colour, i.size, lang)
                + (f" ×{i.quantity}" if i.quantity > 1 else "")
                for i in view.items
            ],
            lang,
        ),
        "status": label("order_status", view.status, lang),
        "carrier": label("carrier", view.carrier, lang),
        "delay_reason": label("delay_reason", view.delay_reason, lang),
        "promised": date(view.promised_at, lang),
        "estimated": date(view.estimated_at, lang),
        "delivered": date(view.delivered_at, lang),
        "total": money(view.total_fen),
    }


def not_found(dispatcher: CollectingDispatcher, number: str | None) -> list[EventType]:
    if number:
        dispatcher.utter_message(response="utter_order_not_found", order_number=number)
    else:
        dispatcher.utter_message(response="utter_no_orders")
    return pending(None)


async def customer_order(
    dispatcher: CollectingDispatcher, tracker: Tracker
) -> OrderStatusView | None:
    """The logged-in shopper's order named in the message, else their latest; None (after
    saying why: log in first, or no such order) when there is none to act on."""
    cid = customer_id(tracker)
    if cid is None:
        dispatcher.utter_message(response="utter_login_required")
        return None
    number = named_order(tracker)
    try:
        view: OrderStatusView = await in_session(
            lambda s: order_status_for_customer(session=s, customer_id=cid, order_number=number)
        )
    except OrderNotFound:
        not_found(dispatcher, number)
        return None
    return view


class ActionExplainShippingDelay(Action):
    def name(self) -> str:
        return "action_explain_shipping_delay"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        cid = customer_id(tracker)
        if cid is None:
            # An anonymous visitor proves the phone digits first (order_status_form); the
            # status answer then carries the apology, the reason and the new estimate.
            return pending("order_lookup")
        lang = language(tracker)
        number = named_order(tracker)
        try:
            view = await in_session(
                lambda s: delayed_order_for_customer(
                    session=s, customer_id=cid, order_number=number
                )
            )
        except OrderNotFound:
            return not_found(dispatcher, number)
        values = order_values(view, lang)
        if view.status in ("cancelled", "refunded", "pending_payment"):
            dispatcher.utter_message(response="utter_order_closed", **values)
            return pending(None)
        if view.status == "delivered":
            dispatcher.utter_message(response="utter_order_delivered", **values)
            return pending(None)
        if not view.is_late:
            dispatcher.utter_message(response="utter_delay_on_time", **values)
            return pending(None)
        shipped = not view.can_cancel
        if shipped:
            dispatcher.utter_message(response="utter_delay_explained_shipped", **values)
            dispatcher.utter_message(response="utter_ask_accept_late_delivery")
        else:
            dispatcher.utter_message(response="utter_delay_explained_unshipped", **values)
            dispatcher.utter_message(response="utter_ask_accept_delay")
        return pending(
            "delay_acceptance",
            {"order_number": view.order_number, "shipped": shipped, "total_fen": view.total_fen},
        )


class ActionAcceptDelay(Action):
    def name(self) -> str:
        return "action_accept_delay"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        detail = pending_detail(tracker)
        turn = conversation_turn(tracker)
        number = detail.get("order_number")
        if turn is None or turn.customer_id is None or not number:
            dispatcher.utter_message(response="utter_login_required")
            return pending(None)
        try:
            await in_session(lambda s: accept_delay(session=s, turn=turn, order_number=number))
        except OrderNotFound:
            return not_found(dispatcher, number)
        if detail.get("shipped"):
            dispatcher.utter_message(response="utter_delay_accepted_shipped", order_number=number)
        else:
            dispatcher.utter_message(response="utter_delay_accepted", order_number=number)
        await offer_after_journey(dispatcher, tracker, turn)
        return pending(None)


class ActionDeclineDelay(Action):
    def name(self) -> str:
        return "action_decline_delay"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        detail = pending_detail(tracker)
        if not detail.get("order_number") or customer_id(tracker) is None:
            dispatcher.utter_message(response="utter_login_required")
            return pending(None)
        settings = get_settings()
        values = {
            "order_number": detail["order_number"],
            "refund": money(detail.get("total_fen")),
            "coupon": money(settings.delay_coupon_fen),
        }
        if detail.get("shipped"):
            dispatcher.utter_message(response="utter_delay_offer_remedies_shipped", **values)
        else:
            dispatcher.utter_message(response="utter_delay_offer_remedies", **values)
        return pending("delay_remedy", detail)


class ActionApplyDelayRemedy(Action):
    """Carry out the shopper's choice: cancel (or refuse on delivery) or the coupon."""

    def name(self) -> str:
        return "action_apply_delay_remedy"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        detail = pending_detail(tracker)
        turn = conversation_turn(tracker)
        number = detail.get("order_number")
        if turn is None or turn.customer_id is None or not number:
            dispatcher.utter_message(response="utter_login_required")
            return pending(None)
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        lang = language(tracker)
        settings = get_settings()
        try:
            if intent == "coupon_promotion":
                coupon = await in_session(
                    lambda s: issue_delay_coupon(session=s, turn=turn, order_number=number)
                )
                dispatcher.utter_message(
                    response="utter_delay_coupon_issued"
                    if coupon.min_spend_fen == 0
                    else "utter_delay_coupon_issued_min_spend",
                    amount=money(coupon.amount_fen),
                    code=coupon.code,
                    min_spend=money(coupon.min_spend_fen),
                    expires=date(coupon.expires_at, lang),
                )
                return pending(None)
            if intent == "cancel_order":
                if not detail.get("shipped"):
                    try:
                        change = await in_session(
                            lambda s: cancel_order(
                                session=s, turn=turn, order_number=number, reason="delay"
                            )
                        )
                        dispatcher.utter_message(
                            response="utter_order_cancelled",
                            order_number=change.order_number,
                            refund=money(change.refund_fen),
                            days=settings.refund_business_days,
                        )
                        return pending(None)
                    except OrderNotCancellable:
                        pass  # picked up in the meantime: refuse on delivery instead
                change = await in_session(
                    lambda s: promise_refund_on_refusal(session=s, turn=turn, order_number=number)
                )
                dispatcher.utter_message(
                    response="utter_refund_on_refusal",
                    order_number=change.order_number,
                    refund=money(change.refund_fen),
                    days=settings.refund_business_days,
                )
                return pending(None)
        except OrderNotFound:
            return not_found(dispatcher, number)
        dispatcher.utter_message(response="utter_nothing_changed")
        return pending(None)
