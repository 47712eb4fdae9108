"""Complaints, low confidence, invoices and address changes."""

from __future__ import annotations

from typing import Any

from rasa_sdk.executor import CollectingDispatcher

from actions.invoice import ActionRecordInvoiceRequest, ValidateInvoiceForm
from actions.modify import (
    ActionAskNewAddress,
    ActionChangeAddress,
    ActionOfferModification,
    ValidateModifyAddressForm,
)
from actions.service import ActionClarifyLowConfidence, ActionHandleComplaint
from tests.actions.journey_support import (
    customer_id,
    customer_whose_latest_order,
    latest_order,
    outcomes,
    responses,
    run,
    slot,
    tracker,
)


async def test_complaint_empathise_own_resolve_recorded_once_and_a_person_offered(
    app_db: str,
) -> None:
    for _ in range(2):
        dispatcher, _ = await run(
            ActionHandleComplaint(),
            intent="complaint",
            text="质量太差了，我要投诉",
            customer_id=customer_id("C00001"),
            message_id="complaint-1",
        )
        assert responses(dispatcher) == ["utter_complaint_empathise", "utter_complaint_resolve"]
        assert dispatcher.messages[1]["custom"] == {"kefu": {"handoff": "complaint"}}
    assert outcomes("complaint-1") == ["complaint_recorded"]
    anonymous, _ = await run(
        ActionHandleComplaint(), intent="complaint", text="terrible", message_id="complaint-2"
    )
    assert anonymous.messages[1]["custom"] == {"kefu": {"handoff": "complaint"}}
    assert outcomes("complaint-2") == ["complaint_recorded"]


def _fallback_event(text: str) -> dict[str, Any]:
    return {"event": "user", "text": text, "parse_data": {"intent": {"name": "nlu_fallback"}}}


async def test_low_confidence_offers_the_two_likeliest_topics(app_db: str) -> None:
    ranking = [
        {"name": "nlu_fallback", "confidence": 0.75},
        {"name": "shipping_delay", "confidence": 0.41},
        {"name": "greet", "confidence": 0.3},
        {"name": "order_status", "confidence": 0.2},
        {"name": "thank", "confidence": 0.1},
    ]
    dispatcher, _ = await run(
        ActionClarifyLowConfidence(),
        intent="nlu_fallback",
        text="那个东西呢",
        ranking=ranking,
        events=[
            {"event": "user", "parse_data": {"intent": {"name": "greet"}}},
            _fallback_event("那个东西呢"),
        ],
    )
    assert responses(dispatcher) == ["utter_clarify"]
    buttons = dispatcher.messages[0]["buttons"]
    assert [b["payload"] for b in buttons] == ["/shipping_delay", "/order_status", "/human_agent"]
    assert buttons[0]["title"] == "发货/物流延迟"
    assert "custom" not in dispatcher.messages[0] or not dispatcher.messages[0]["custom"]


async def test_low_confidence_twice_in_a_row_offers_a_person(app_db: str) -> None:
    dispatcher, _ = await run(
        ActionClarifyLowConfidence(),
        intent="nlu_fallback",
        language="en",
        events=[_fallback_event("hmm"), {"event": "bot", "text": "?"}, _fallback_event("what")],
    )
    assert responses(dispatcher) == ["utter_fallback_handoff"]
    assert dispatcher.messages[0]["custom"] == {"kefu": {"handoff": "fallback"}}


async def test_invoice_form_needs_a_login_and_a_valid_tax_id(app_db: str) -> None:
    form = ValidateInvoiceForm()
    slots = ["invoice_title", "invoice_tax_id"]
    anonymous = tracker(intent="invoice")
    assert await form.required_slots(slots, CollectingDispatcher(), anonymous, {}) == []
    personal = tracker(
        intent="inform", customer_id=customer_id("C00001"), slots={"invoice_title": "个人"}
    )
    assert await form.required_slots(slots, CollectingDispatcher(), personal, {}) == [
        "invoice_title"
    ]
    dispatcher = CollectingDispatcher()
    bad = await form.validate_invoice_tax_id("12345", dispatcher, personal, {})
    good = await form.validate_invoice_tax_id("91330100 MA2B3C4D5E", dispatcher, personal, {})
    assert bad == {"invoice_tax_id": None} and good == {"invoice_tax_id": "91330100MA2B3C4D5E"}
    # The letters of a tax id do not switch a Chinese conversation to English.
    hinted = tracker(intent="inform", customer_id=customer_id("C00001"))
    hinted.latest_message["metadata"]["language"] = "zh"
    kept = await form.validate_invoice_tax_id("91330100MA2B3C4D5E", dispatcher, hinted, {})
    assert kept == {"invoice_tax_id": "91330100MA2B3C4D5E", "language": "zh"}
    assert responses(dispatcher) == ["utter_invalid_tax_id"]


async def test_invoice_request_is_recorded_once(app_db: str) -> None:
    zhang = customer_id("C00001")
    slots = {"invoice_title": "杭州某某科技有限公司", "invoice_tax_id": "91330100MA2B3C4D5E"}
    for _ in range(2):
        dispatcher, events = await run(
            ActionRecordInvoiceRequest(),
            intent="inform",
            text="91330100MA2B3C4D5E",  # its digits are not an order number
            customer_id=zhang,
            message_id="invoice-1",
            slots=slots,
        )
        assert responses(dispatcher) == ["utter_invoice_recorded"]
        assert slot(events, "invoice_title") is None
    assert outcomes("invoice-1") == ["invoice_requested"]
    login, _ = await run(ActionRecordInvoiceRequest(), intent="inform", slots=slots)
    assert responses(login) == ["utter_login_required"]


async def test_address_change_while_unshipped(app_db: str) -> None:
    cid = customer_whose_latest_order(late=False, shipped=False)
    offered, events = await run(ActionOfferModification(), intent="modify_order", customer_id=cid)
    assert responses(offered) == ["utter_address_change_possible"]
    assert slot(events, "pending") == "address_input"
    form = ValidateModifyAddressForm()
    dispatcher = CollectingDispatcher()
    assert await form.validate_new_address("不知道", dispatcher, tracker(intent="inform"), {}) == {
        "new_address": None
    }
    address = "上海市浦东新区世纪大道100号"
    assert (await form.validate_new_address(address, dispatcher, tracker(intent="inform"), {}))[
        "new_address"
    ] == address
    for _ in range(2):
        changed, _ = await run(
            ActionChangeAddress(),
            intent="inform",
            customer_id=cid,
            message_id="address-1",
            pending="address_input",
            detail=slot(events, "pending_detail"),
            slots={"new_address": address},
        )
        assert responses(changed) == ["utter_address_changed"]
    assert latest_order(cid).address == address
    assert outcomes("address-1") == ["address_changed"]


async def test_a_shipped_order_cannot_change_address(app_db: str) -> None:
    dispatcher, events = await run(
        ActionOfferModification(), intent="modify_order", customer_id=customer_id("C00002")
    )
    assert responses(dispatcher) == ["utter_cannot_modify_shipped"]
    assert slot(events, "pending") is None


async def test_a_note_is_added_while_unshipped_and_explained_once_shipped(app_db: str) -> None:
    cid = customer_whose_latest_order(late=False, shipped=False)
    offered, events = await run(
        ActionOfferModification(),
        intent="modify_order",
        text="帮我备注一下，不要放快递柜",
        customer_id=cid,
    )
    assert responses(offered) == ["utter_note_change_possible"]
    detail = slot(events, "pending_detail")
    assert slot(events, "pending") == "address_input" and detail["field"] == "note"
    asked, _ = await run(
        ActionAskNewAddress(), intent="modify_order", detail=detail, pending="address_input"
    )
    assert responses(asked) == ["utter_ask_new_note"]
    # A note need not look like an address.
    form = ValidateModifyAddressForm()
    note = "不要放快递柜，送到门口"
    validated = await form.validate_new_address(
        note,
        CollectingDispatcher(),
        tracker(intent="inform", pending="address_input", detail=detail),
        {},
    )
    assert validated == {"new_address": note}
    before = latest_order(cid).address
    for _ in range(2):
        changed, _ = await run(
            ActionChangeAddress(),
            intent="inform",
            customer_id=cid,
            message_id="note-1",
            pending="address_input",
            detail=detail,
            slots={"new_address": note},
        )
        assert responses(changed) == ["utter_note_changed"]
    order = latest_order(cid)
    assert order.note == note and order.address == before
    assert outcomes("note-1") == ["note_changed"]

    shipped, _ = await run(
        ActionOfferModification(),
        intent="modify_order",
        text="can you add a note to my order",
        customer_id=customer_id("C00002"),
    )
    assert responses(shipped) == ["utter_cannot_add_note_shipped"]
