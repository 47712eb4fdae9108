"""Invoices: a form collects the title (抬头) and, for a company, the tax id (税号); the
request is recorded for the order."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import conversation_turn, customer_id, first_entity, in_session
from actions.products import offer_after_journey
from bot.errors import OrderNotFound
from bot.services.invoices import is_personal, normalise_tax_id, record_invoice_request
from bot.services.orders import extract_order_number

RESET = [SlotSet("invoice_title", None), SlotSet("invoice_tax_id", None)]


class ValidateInvoiceForm(FormValidationAction):
    def name(self) -> str:
        return "validate_invoice_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        if customer_id(tracker) is None:
            return []  # the action after the form asks them to log in
        if is_personal(tracker.get_slot("invoice_title")):
            return ["invoice_title"]
        return domain_slots

    async def validate_invoice_title(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        title = str(value or "").strip()
        if not 2 <= len(title) <= 100 and not is_personal(title):
            dispatcher.utter_message(response="utter_invalid_invoice_title")
            return {"invoice_title": None}
        return {"invoice_title": title}

    async def validate_invoice_tax_id(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        tax_id = normalise_tax_id(str(value or ""))
        if tax_id is None:
            dispatcher.utter_message(response="utter_invalid_tax_id")
            return {"invoice_tax_id": None}
        # A tax id's letters are no sign of English: keep the conversation's language.
        hint = ((tracker.latest_message or {}).get("metadata") or {}).get("language")
        return {"invoice_tax_id": tax_id, **({"language": hint} if hint in ("zh", "en") else {})}


class ActionRecordInvoiceRequest(Action):
    def name(self) -> str:
        return "action_record_invoice_request"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        turn = conversation_turn(tracker)
        title = tracker.get_slot("invoice_title")
        if turn is None or turn.customer_id is None:
            dispatcher.utter_message(response="utter_login_required")
            return RESET
        if not title:
            return RESET  # the form was left
        tax_id = None if is_personal(title) else tracker.get_slot("invoice_tax_id")
        # Only an order number NLU found: the digits of a tax id are not one.
        entity = first_entity(tracker, "order_number")
        number = extract_order_number(str(entity)) if entity else None
        try:
            request = await in_session(
                lambda s: record_invoice_request(
                    session=s, turn=turn, title=title, tax_id=tax_id, order_number=number
                )
            )
        except OrderNotFound:
            dispatcher.utter_message(response="utter_no_invoice_order")
            return RESET
        dispatcher.utter_message(
            response="utter_invoice_recorded" if tax_id else "utter_invoice_recorded_personal",
            order_number=request.order_number,
            title=request.title,
            tax_id=request.tax_id or "",
        )
        await offer_after_journey(dispatcher, tracker, turn)
        return RESET
