"""Cancel an order: an unshipped one after the shopper confirms; a shipped one is explained
and a return offered."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (
    conversation_turn,
    in_session,
    language,
    money,
    pending,
    pending_detail,
)
from actions.delay import customer_order, not_found, order_values
from bot.errors import OrderNotCancellable, OrderNotFound
from bot.labels import label
from bot.services.orders import cancel_order
from bot.settings import get_settings


def cannot_cancel(
    dispatcher: CollectingDispatcher, status: str, values: dict[str, Any]
) -> list[EventType]:
    if status == "shipped":
        dispatcher.utter_message(response="utter_cannot_cancel_shipped", **values)
    elif status == "delivered":
        dispatcher.utter_message(response="utter_cannot_cancel_delivered", **values)
    else:
        dispatcher.utter_message(response="utter_cannot_cancel_closed", **values)
    return pending(None)


class ActionOfferCancellation(Action):
    def name(self) -> str:
        return "action_offer_cancellation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        view = await customer_order(dispatcher, tracker)
        if view is None:
            return pending(None)
        lang = language(tracker)
        values = order_values(view, lang)
        if not view.can_cancel:
            status = "shipped" if view.status == "paid" else view.status
            return cannot_cancel(dispatcher, status, values)
        refund = view.total_fen if view.status == "paid" else 0
        dispatcher.utter_message(
            response="utter_confirm_cancel" if refund else "utter_confirm_cancel_unpaid",
            refund=money(refund),
            **values,
        )
        return pending("cancel_confirm", {"order_number": view.order_number})


class ActionCancelOrder(Action):
    def name(self) -> str:
        return "action_cancel_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        turn = conversation_turn(tracker)
        number = pending_detail(tracker).get("order_number")
        if turn is None or turn.customer_id is None or not number:
            dispatcher.utter_message(response="utter_login_required")
            return pending(None)
        lang = language(tracker)
        try:
            change = await in_session(
                lambda s: cancel_order(session=s, turn=turn, order_number=number)
            )
        except OrderNotFound:
            return not_found(dispatcher, number)
        except OrderNotCancellable as exc:
            return cannot_cancel(
                dispatcher,
                exc.status,
                {"order_number": number, "status": label("order_status", exc.status, lang)},
            )
        dispatcher.utter_message(
            response="utter_order_cancelled"
            if change.refund_fen
            else "utter_order_cancelled_unpaid",
            order_number=change.order_number,
            refund=money(change.refund_fen),
            days=get_settings().refund_business_days,
        )
        return pending(None)


class ActionDismissPending(Action):
    """The shopper said no to the question just asked: nothing changes."""

    def name(self) -> str:
        return "action_dismiss_pending"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_nothing_changed")
        return pending(None)
