from __future__ import annotations

from typing import Any

from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.greet import ActionGreet
from actions.orders import ActionCheckOrderStatus, ValidateOrderStatusForm
from tests.actions.conftest import make_tracker

DOMAIN: dict[str, Any] = {
    "forms": {"order_status_form": {"required_slots": ["order_number", "phone_last4"]}},
    "slots": {},
}


def responses(dispatcher: CollectingDispatcher) -> list[str]:
    return [m["response"] for m in dispatcher.messages]


async def test_logged_in_shopper_gets_latest_order_with_late_reason(demo: dict[str, Any]) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(customer_id=demo["customers"]["C00002"], language="en")
    events = await ActionCheckOrderStatus().run(dispatcher, tracker, DOMAIN)
    assert responses(dispatcher)[-1] == "utter_order_late"
    first = dispatcher.messages[0]
    assert first["order_number"] == demo["emily_order"]
    assert dispatcher.messages[-1]["delay_reason"] == "bad weather"
    assert SlotSet("order_number", None) in events


async def test_chinese_labels_for_chinese_shoppers(demo: dict[str, Any]) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(customer_id=demo["customers"]["C00002"], language="zh")
    await ActionCheckOrderStatus().run(dispatcher, tracker, DOMAIN)
    assert dispatcher.messages[-1]["delay_reason"] == "受恶劣天气影响"


async def test_someone_elses_order_is_not_shown(demo: dict[str, Any]) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        customer_id=demo["customers"]["C00001"], slots={"order_number": demo["other_order"]}
    )
    await ActionCheckOrderStatus().run(dispatcher, tracker, DOMAIN)
    assert responses(dispatcher) == ["utter_order_not_found"]


async def test_customer_id_comes_from_metadata_not_slots(demo: dict[str, Any]) -> None:
    # An anonymous message with slots filled but no verified digits shows nothing.
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(slots={"order_number": demo["emily_order"]})
    await ActionCheckOrderStatus().run(dispatcher, tracker, DOMAIN)
    assert dispatcher.messages == []


async def test_anonymous_visitor_with_verified_digits(demo: dict[str, Any]) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        slots={"order_number": demo["emily_order"], "phone_last4": demo["emily_phone"][-4:]},
        language="en",
    )
    await ActionCheckOrderStatus().run(dispatcher, tracker, DOMAIN)
    assert responses(dispatcher)[0] in (
        "utter_order_in_transit",
        "utter_order_unshipped",
        "utter_order_delivered",
    )
    assert all("address" not in m and "name" not in m for m in dispatcher.messages)


async def test_form_asks_nothing_of_a_logged_in_shopper(demo: dict[str, Any]) -> None:
    form = ValidateOrderStatusForm()
    tracker = make_tracker(customer_id=demo["customers"]["C00001"])
    required = await form.required_slots(
        ["order_number", "phone_last4"], CollectingDispatcher(), tracker, DOMAIN
    )
    assert required == []
    anonymous = make_tracker()
    assert await form.required_slots(
        ["order_number", "phone_last4"], CollectingDispatcher(), anonymous, DOMAIN
    ) == ["order_number", "phone_last4"]


async def test_form_validates_order_number(demo: dict[str, Any]) -> None:
    form = ValidateOrderStatusForm()
    dispatcher = CollectingDispatcher()
    ok = await form.validate_order_number(
        f"订单号是{demo['emily_order']}", dispatcher, make_tracker(), DOMAIN
    )
    assert ok == {"order_number": demo["emily_order"]}
    unknown = await form.validate_order_number("599999999999", dispatcher, make_tracker(), DOMAIN)
    assert unknown == {"order_number": None}
    bad = await form.validate_order_number("不知道", dispatcher, make_tracker(), DOMAIN)
    assert bad == {"order_number": None}
    assert responses(dispatcher) == ["utter_order_not_found", "utter_invalid_order_number"]


async def test_form_phone_digits_three_strikes(demo: dict[str, Any]) -> None:
    form = ValidateOrderStatusForm()
    right = demo["emily_phone"][-4:]
    wrong = "0000" if right != "0000" else "1111"
    dispatcher = CollectingDispatcher()
    result = await form.validate_phone_last4(
        f"尾号{right}",
        dispatcher,
        make_tracker(slots={"order_number": demo["emily_order"]}),
        DOMAIN,
    )
    assert result["phone_last4"] == right
    result = await form.validate_phone_last4(
        wrong,
        dispatcher,
        make_tracker(slots={"order_number": demo["emily_order"], "verification_attempts": 1.0}),
        DOMAIN,
    )
    assert result == {"phone_last4": None, "verification_attempts": 2.0}
    result = await form.validate_phone_last4(
        wrong,
        dispatcher,
        make_tracker(slots={"order_number": demo["emily_order"], "verification_attempts": 2.0}),
        DOMAIN,
    )
    assert result["requested_slot"] is None and result["order_number"] is None
    assert responses(dispatcher) == ["utter_phone_mismatch", "utter_verification_locked"]


async def test_greet_by_name(demo: dict[str, Any]) -> None:
    dispatcher = CollectingDispatcher()
    await ActionGreet().run(
        dispatcher, make_tracker(intent="greet", customer_id=demo["customers"]["C00001"]), {}
    )
    assert dispatcher.messages[0]["response"] == "utter_greet_known"
    assert dispatcher.messages[0]["name"] == "张伟"
    anonymous = CollectingDispatcher()
    await ActionGreet().run(anonymous, make_tracker(intent="greet"), {})
    assert responses(anonymous) == ["utter_greet"]
