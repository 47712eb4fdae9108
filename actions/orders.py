"""Where is my order: the look-up form and the status answer.

A logged-in shopper gets their latest order (or the one they name) at once. An anonymous
visitor gives the order number and then the last four digits of the order's phone number;
three wrong answers end the attempt.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import customer_id, in_session, language
from bot.errors import OrderNotFound, VerificationFailed
from bot.formatting import format_date, format_datetime
from bot.labels import label
from bot.services.orders import (
    OrderStatusView,
    extract_last4,
    extract_order_number,
    order_exists,
    order_status_for_customer,
    order_status_for_visitor,
)
from bot.settings import get_settings

MAX_VERIFICATION_ATTEMPTS = 3


class ValidateOrderStatusForm(FormValidationAction):
    def name(self) -> str:
        return "validate_order_status_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        if customer_id(tracker) is not None:
            return []
        return domain_slots

    async def validate_order_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        number = extract_order_number(str(value or ""))
        if number is None:
            dispatcher.utter_message(response="utter_invalid_order_number")
            return {"order_number": None}
        if customer_id(tracker) is None:
            exists = await in_session(lambda s: order_exists(session=s, order_number=number))
            if not exists:
                dispatcher.utter_message(response="utter_order_not_found", order_number=number)
                return {"order_number": None}
        return {"order_number": number}

    async def validate_phone_last4(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        digits = extract_last4(str(value or ""))
        number = tracker.get_slot("order_number")
        attempts = float(tracker.get_slot("verification_attempts") or 0) + 1
        if digits is not None and number:
            try:
                await in_session(
                    lambda s: order_status_for_visitor(
                        session=s, order_number=number, phone_last4=digits
                    )
                )
                return {"phone_last4": digits, "verification_attempts": 0.0}
            except (VerificationFailed, OrderNotFound):
                pass
        if attempts >= MAX_VERIFICATION_ATTEMPTS:
            dispatcher.utter_message(response="utter_verification_locked")
            return {
                "phone_last4": None,
                "order_number": None,
                "verification_attempts": 0.0,
                "requested_slot": None,
            }
        dispatcher.utter_message(response="utter_phone_mismatch")
        return {"phone_last4": None, "verification_attempts": attempts}


def _order_response(view: OrderStatusView, lang: str) -> list[tuple[str, dict[str, Any]]]:
    """The responses (and their values) that describe ``view`` in ``lang``."""
    tz = get_settings().store_timezone
    name = "name_en" if lang == "en" else "name_zh"
    sep = ", " if lang == "en" else "、"
    items = sep.join(
        f"{getattr(i, name)} {label('colour', i.colour, lang)}/{i.size}"
        + (f" ×{i.quantity}" if i.quantity > 1 else "")
        for i in view.items
    )
    values: dict[str, Any] = {
        "order_number": view.order_number,
        "items": items,
        "status": label("order_status", view.status, lang),
        "carrier": label("carrier", view.carrier, lang),
        "tracking_number": view.tracking_number or "",
        "promised": format_date(view.promised_at, lang, tz),
        "estimated": format_date(view.estimated_at, lang, tz),
        "delivered": format_date(view.delivered_at, lang, tz),
        "delay_reason": label("delay_reason", view.delay_reason, lang),
    }
    if view.status in ("cancelled", "refunded", "pending_payment"):
        return [("utter_order_closed", values)]
    if view.status == "delivered":
        return [("utter_order_delivered", values)]
    responses: list[tuple[str, dict[str, Any]]] = []
    if view.status == "shipped" and view.events:
        location = "location_en" if lang == "en" else "location_zh"
        values["status"] = label("shipment_status", view.shipment_status, lang)
        values["events"] = "\n".join(
            f"· {format_datetime(e.occurred_at, lang, tz)} {getattr(e, location)} "
            f"{label('shipment_status', e.status, lang)}"
            for e in view.events
        )
        responses.append(("utter_order_in_transit", values))
    else:
        responses.append(("utter_order_unshipped", values))
    if view.is_late:
        responses.append(("utter_order_late", values))
    return responses


class ActionCheckOrderStatus(Action):
    def name(self) -> str:
        return "action_check_order_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        lang = language(tracker)
        cid = customer_id(tracker)
        number = tracker.get_slot("order_number")
        # Also forgets a delay question that led here (actions/delay.py).
        reset = [
            SlotSet("order_number", None),
            SlotSet("phone_last4", None),
            SlotSet("pending", None),
            SlotSet("pending_detail", None),
        ]
        try:
            if cid is not None:
                view = await in_session(
                    lambda s: order_status_for_customer(
                        session=s, customer_id=cid, order_number=number
                    )
                )
            else:
                last4 = tracker.get_slot("phone_last4")
                if not number or not last4:
                    # The form ended without a verified order (e.g. too many wrong digits).
                    return reset
                view = await in_session(
                    lambda s: order_status_for_visitor(
                        session=s, order_number=number, phone_last4=last4
                    )
                )
        except OrderNotFound:
            if number:
                dispatcher.utter_message(response="utter_order_not_found", order_number=number)
            else:
                dispatcher.utter_message(response="utter_no_orders")
            return reset
        except VerificationFailed:
            dispatcher.utter_message(response="utter_verification_locked")
            return reset
        for response, values in _order_response(view, lang):
            dispatcher.utter_message(response=response, **values)
        return reset
