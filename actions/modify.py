"""Change an order's delivery address or its note (a message for the warehouse or the
courier) while it is still in the warehouse; otherwise say why not. One form collects the new
value (``new_address``); the pending question's detail says which of the two it is."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import (
    conversation_turn,
    in_session,
    language,
    pending,
    pending_detail,
)
from actions.delay import customer_order, not_found, order_values
from bot.errors import OrderNotFound, OrderNotModifiable
from bot.labels import label
from bot.services.orders import change_order

ADDRESS_HINT = re.compile(r"[省市区县路街道号弄室栋楼村镇]|\d.*[a-z]{3,}|[a-z]{3,}.*\d", re.I)
# A note, not the address: "备注" / "留言" / "捎句话" / "add a note" / "delivery instructions".
NOTE_HINT = re.compile(
    r"备注|留言|留个言|捎句话|带句话|\bnotes?\b|instructions?|message (?:for|to) the", re.I
)
MAX_NOTE = 300
# What the bot says, by what is being changed.
SAY = {
    "address": {
        "possible": "utter_address_change_possible",
        "ask": "utter_ask_new_address",
        "changed": "utter_address_changed",
        "shipped": "utter_cannot_modify_shipped",
    },
    "note": {
        "possible": "utter_note_change_possible",
        "ask": "utter_ask_new_note",
        "changed": "utter_note_changed",
        "shipped": "utter_cannot_add_note_shipped",
    },
}


def wants_note(text: str | None) -> bool:
    return bool(text and NOTE_HINT.search(text))


def changing(tracker: Tracker) -> str:
    """What the pending change is about: "note" or "address"."""
    return "note" if pending_detail(tracker).get("field") == "note" else "address"


class ActionOfferModification(Action):
    def name(self) -> str:
        return "action_offer_modification"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        view = await customer_order(dispatcher, tracker)
        if view is None:
            return pending(None)
        lang = language(tracker)
        values = order_values(view, lang)
        field = "note" if wants_note(tracker.latest_message.get("text")) else "address"
        if view.can_cancel:
            dispatcher.utter_message(response=SAY[field]["possible"], **values)
            return pending("address_input", {"order_number": view.order_number, "field": field})
        if view.status in ("paid", "shipped"):
            dispatcher.utter_message(response=SAY[field]["shipped"], **values)
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
        if changing(tracker) == "note":
            if not address:
                return {"new_address": None}
            return {"new_address": address[:MAX_NOTE]}
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
        field = changing(tracker)
        change = {"note": address} if field == "note" else {"address": address}
        try:
            await in_session(
                lambda s: change_order(session=s, turn=turn, order_number=number, **change)
            )
        except OrderNotFound:
            return [*not_found(dispatcher, number), SlotSet("new_address", None)]
        except OrderNotModifiable as exc:
            dispatcher.utter_message(
                response=SAY[field]["shipped"],
                order_number=number,
                status=label("order_status", exc.status, lang),
            )
            return reset
        dispatcher.utter_message(response=SAY[field]["changed"], order_number=number)
        return reset


class ActionAskNewAddress(Action):
    """The form's question: the new address, or the note."""

    def name(self) -> str:
        return "action_ask_new_address"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(response=SAY[changing(tracker)]["ask"])
        return []
