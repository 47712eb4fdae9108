"""Returns and exchanges through the actions: eligibility, requests (once per message),
refund timeline and request status."""

from __future__ import annotations

from sqlalchemy import func, select

from actions.returns import (
    ActionCreateExchange,
    ActionCreateReturn,
    ActionOfferExchange,
    ActionOfferReturn,
)
from bot.db import session_scope
from bot.models import ServiceRequest
from tests.actions.journey_support import (
    customer_id,
    entity,
    latest_order,
    new_delivered_order,
    outcomes,
    responses,
    run,
    set_stock,
    slot,
)


def requests_of(cid: int) -> int:
    with session_scope() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(ServiceRequest)
                .where(ServiceRequest.customer_id == cid)
            )
            or 0
        )


async def test_anonymous_visitors_log_in_first(app_db: str) -> None:
    for action in (ActionOfferReturn(), ActionOfferExchange(), ActionCreateReturn()):
        dispatcher, _ = await run(action, intent="return_refund")
        assert responses(dispatcher) == ["utter_login_required"]


async def test_eligible_return_is_confirmed_then_created_once(app_db: str) -> None:
    cid, number = new_delivered_order("P-CHN-NAVY-31", days_ago=2)
    dispatcher, events = await run(
        ActionOfferReturn(), intent="return_refund", text="我要退货", customer_id=cid
    )
    assert responses(dispatcher) == ["utter_confirm_return"]
    assert dispatcher.messages[0]["order_number"] == number
    assert dispatcher.messages[0]["refund"] == "¥299.00"
    assert slot(events, "pending") == "return_confirm"
    detail = slot(events, "pending_detail")
    for _ in range(2):
        created, events = await run(
            ActionCreateReturn(),
            intent="affirm",
            customer_id=cid,
            message_id="return-yes",
            pending="return_confirm",
            detail=detail,
        )
        assert responses(created) == ["utter_return_created"]
        assert created.messages[0]["number"].startswith("R")
    assert requests_of(cid) == 1 and outcomes("return-yes") == ["return_requested"]


async def test_a_quality_problem_is_a_quality_return(app_db: str) -> None:
    cid, _ = new_delivered_order("P-OXF-WHITE-S", days_ago=12)
    dispatcher, _ = await run(
        ActionOfferReturn(), intent="return_refund", text="衣服破了个洞，我要退货", customer_id=cid
    )
    assert responses(dispatcher) == ["utter_confirm_return_quality"]


async def test_past_seven_days_and_excluded_goods_are_refused_politely(app_db: str) -> None:
    late, _ = new_delivered_order("P-OXF-WHITE-M", days_ago=9)
    underwear, _ = new_delivered_order("P-UND-GREY-L", days_ago=1)
    custom, _ = new_delivered_order("P-EMB-BLUE-L", days_ago=1)
    for cid, reason in (
        (late, "已超过签收后7天无理由退换的期限"),
        (underwear, "贴身衣物出于卫生原因不支持7天无理由退换"),
        (custom, "定制商品不支持7天无理由退换"),
    ):
        dispatcher, events = await run(
            ActionOfferReturn(), intent="return_refund", text="退货", customer_id=cid
        )
        assert responses(dispatcher) == ["utter_return_not_eligible"]
        assert dispatcher.messages[0]["reason"] == reason
        assert slot(events, "pending") is None


async def test_not_delivered_yet(app_db: str) -> None:
    cid = customer_id("C00003")  # her latest order is late and unshipped
    number = latest_order(cid).order_number
    dispatcher, _ = await run(
        ActionOfferReturn(),
        intent="return_refund",
        text=f"I want to return order {number}",
        customer_id=cid,
        language="en",
        entities=[entity("order_number", number)],
    )
    assert responses(dispatcher) == ["utter_return_not_eligible"]
    assert "hasn't been delivered" in dispatcher.messages[0]["reason"]


async def test_status_of_a_request_and_the_refund_timeline(app_db: str) -> None:
    cid, _ = new_delivered_order("P-JNS-BLUE-32", days_ago=1)
    none, _ = await run(
        ActionOfferReturn(), intent="return_refund", text="退款什么时候到账", customer_id=cid
    )
    assert responses(none) == ["utter_no_requests"]
    _, events = await run(ActionOfferReturn(), intent="return_refund", text="退货", customer_id=cid)
    await run(
        ActionCreateReturn(),
        intent="affirm",
        customer_id=cid,
        detail=slot(events, "pending_detail"),
    )
    status, _ = await run(
        ActionOfferReturn(), intent="return_refund", text="退款什么时候到账", customer_id=cid
    )
    assert responses(status) == ["utter_request_status", "utter_refund_timeline"]
    assert status.messages[0]["status"] == "已提交，等待审核"
    # The open request also stops a second one for the same item.
    again, _ = await run(ActionOfferReturn(), intent="return_refund", text="退货", customer_id=cid)
    assert again.messages[0]["reason"] == "这件商品已经有一个处理中的退换申请"


async def test_exchange_asks_for_the_size_then_confirms_then_creates_once(app_db: str) -> None:
    cid, _ = new_delivered_order("P-OXF-BLUE-M", days_ago=2)
    set_stock("P-OXF-BLUE-L", 9)
    asked, events = await run(
        ActionOfferExchange(), intent="exchange", text="我想换货", customer_id=cid
    )
    assert responses(asked) == ["utter_ask_exchange_choice"]
    assert "蓝色/L" in asked.messages[0]["options"]
    assert slot(events, "pending") == "exchange_choice"
    proposed, events = await run(
        ActionOfferExchange(),
        intent="inform",
        text="L码",
        customer_id=cid,
        entities=[entity("size", "L")],
        pending="exchange_choice",
        detail=slot(events, "pending_detail"),
    )
    assert responses(proposed) == ["utter_confirm_exchange"]
    assert proposed.messages[0]["to"] == "蓝色/L"
    assert slot(events, "pending") == "exchange_confirm"
    for _ in range(2):
        created, _ = await run(
            ActionCreateExchange(),
            intent="affirm",
            customer_id=cid,
            message_id="exchange-yes",
            pending="exchange_confirm",
            detail=slot(events, "pending_detail"),
        )
        assert responses(created) == ["utter_exchange_created"]
    assert requests_of(cid) == 1 and outcomes("exchange-yes") == ["exchange_requested"]


async def test_exchange_one_size_up_in_english(app_db: str) -> None:
    cid, _ = new_delivered_order("P-CHN-OLIVE-31", days_ago=2)
    set_stock("P-CHN-OLIVE-32", 4)
    dispatcher, _ = await run(
        ActionOfferExchange(),
        intent="exchange",
        text="can I exchange it for a bigger size",
        customer_id=cid,
        language="en",
    )
    assert responses(dispatcher) == ["utter_confirm_exchange"]
    assert dispatcher.messages[0]["to"] == "olive/32"


async def test_exchange_for_something_out_of_stock_or_missing(app_db: str) -> None:
    cid, _ = new_delivered_order("P-OXF-PINK-M", days_ago=2)
    set_stock("P-OXF-PINK-XL", 0)
    out, events = await run(
        ActionOfferExchange(),
        intent="exchange",
        text="换XL",
        customer_id=cid,
        entities=[entity("size", "XL")],
    )
    assert responses(out) == ["utter_exchange_out_of_stock"]
    assert slot(events, "pending") == "exchange_choice"
    missing, _ = await run(
        ActionOfferExchange(),
        intent="exchange",
        text="换绿色",
        customer_id=cid,
        entities=[entity("colour", "green")],
    )
    assert responses(missing) == ["utter_exchange_no_such_variant"]


async def test_exchange_not_eligible(app_db: str) -> None:
    cid, _ = new_delivered_order("P-UND-BLACK-M", days_ago=1)
    dispatcher, _ = await run(
        ActionOfferExchange(), intent="exchange", text="换个L码", customer_id=cid
    )
    assert responses(dispatcher) == ["utter_exchange_not_eligible"]


async def test_a_size_given_in_a_short_low_confidence_answer(app_db: str) -> None:
    cid, _ = new_delivered_order("P-OXF-WHITE-M", days_ago=2)
    set_stock("P-OXF-WHITE-S", 3)
    _, events = await run(ActionOfferExchange(), intent="exchange", text="换货", customer_id=cid)
    proposed, events = await run(
        ActionOfferExchange(),
        intent="nlu_fallback",
        text="size S",
        customer_id=cid,
        pending="exchange_choice",
        detail=slot(events, "pending_detail"),
        language="en",
    )
    assert responses(proposed) == ["utter_confirm_exchange"]
    assert proposed.messages[0]["to"] == "white/S"
    again, _ = await run(
        ActionOfferExchange(),
        intent="nlu_fallback",
        text="hmm",
        customer_id=cid,
        pending="exchange_choice",
        detail=slot(events, "pending_detail"),
    )
    assert responses(again) == ["utter_ask_exchange_choice"]
