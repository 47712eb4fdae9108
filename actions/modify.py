"""Change an order's delivery address while it is still in the warehouse; otherwise say why
not. The new address is collected by a form (any wording is accepted as the address)."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import (
    conversation_turn,
    customer_id,
    in_session,
    language,
    pending,
    pending_detail,
)
from actions.delay import named_order, not_found, order_values
from bot.errors import OrderNotFound, OrderNotModifiable
from bot.labels import label
from bot.services.orders import change_order, order_status_for_customer

ADDRESS_HINT = re.compile(r"[省市区县路街道号弄室栋楼村镇]|\d.*[a-z]{3,}|[a-z]{3,}.*\d", re.I)


class ActionOfferModification(Action):
    def name(self) -> str:
        return "action_offer_modification"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        cid = customer_id(tracker)
        if cid is None:
            dispatcher.utter_message(response="utter_login_required")
            return pending(None)
        lang = language(tracker)
        number = named_order(tracker)
        try:
            view = await in_session(
                lambda s: order_status_for_customer(session=s, customer_id=cid, order_number=number)
            )
        except OrderNotFound:
            return not_found(dispatcher, number)
        values = order_values(view, lang)
        if view.can_cancel:
            dispatcher.utter_message(response="utter_address_change_possible", **values)
            return pending("address_input", {"order_number": view.order_number})
        if view.status in ("paid", "shipped"):
            dispatcher.utter_message(response="utter_cannot_modify_shipped", **values)
        else:
            dispatcher.utter_message(response="utter_cannot_modify_closed", **values)
        return pending(None)


class ValidateModifyAddressForm(FormValidationAction):
    def name(self) -> str:
        return "validate_modify_address_form"

    async def validate_new_address(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        address = str(value or "").strip()
        if len(address) < 6 or not ADDRESS_HINT.search(address):
            dispatcher.utter_message(response="utter_invalid_address")
            return {"new_address": None}
        return {"new_address": address}


class ActionChangeAddress(Action):
    def name(self) -> str:
        return "action_change_address"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reset: list[EventType] = [SlotSet("new_address", None), *pending(None)]
        turn = conversation_turn(tracker)
        number = pending_detail(tracker).get("order_number")
        address = tracker.get_slot("new_address")
        if turn is None or turn.customer_id is None or not number:
            dispatcher.utter_message(response="utter_login_required")
            return reset
        if not address:
            return reset  # the form was left
        lang = language(tracker)
        try:
            await in_session(
                lambda s: change_order(session=s, turn=turn, order_number=number, address=address)
            )
        except OrderNotFound:
            return [*not_found(dispatcher, number), SlotSet("new_address", None)]
        except OrderNotModifiable as exc:
            dispatcher.utter_message(
                response="utter_cannot_modify_shipped",
                order_number=number,
                status=label("order_status", exc.status, lang),
            )
            return reset
        dispatcher.utter_message(response="utter_address_changed", order_number=number)
        return reset
