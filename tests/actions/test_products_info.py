"""Product questions (named product or page context), recommendations, shipping rules,
promotions and coupons, membership."""

from __future__ import annotations

from actions.info import ActionCouponsPromotions, ActionMembershipPoints, ActionShippingInfo
from actions.products import ActionAnswerProductQuestion, ActionRecommendProducts
from tests.actions.journey_support import (
    customer_id,
    entity,
    responses,
    run,
    set_stock,
    slot,
)


async def test_price_of_the_product_page_the_shopper_is_on(app_db: str) -> None:
    dispatcher, _ = await run(
        ActionAnswerProductQuestion(),
        intent="product_question",
        text="这个多少钱",
        page={"product_id": "P-BLZ", "url": "/products/P-BLZ"},
    )
    assert responses(dispatcher) == ["utter_product_price"]
    assert dispatcher.messages[0]["product"] == "海军蓝西装外套"
    assert dispatcher.messages[0]["price"] == "¥899.00"


async def test_stock_per_size_and_colour_of_a_named_product(app_db: str) -> None:
    set_stock("P-SLT-GREY-32", 7)
    set_stock("P-SLT-BLACK-29", 0)
    named = [entity("product", "修身西裤")]
    summary, _ = await run(
        ActionAnswerProductQuestion(),
        intent="product_question",
        text="修身西裤有货吗",
        entities=named,
    )
    assert responses(summary) == ["utter_product_stock_summary"]
    assert "灰色" in summary.messages[0]["available"]
    in_stock, _ = await run(
        ActionAnswerProductQuestion(),
        intent="product_question",
        text="修身西裤灰色32码有货吗",
        entities=[*named, entity("colour", "grey"), entity("size", "32")],
    )
    assert responses(in_stock) == ["utter_product_in_stock"]
    assert in_stock.messages[0]["stock"] == 7
    out, _ = await run(
        ActionAnswerProductQuestion(),
        intent="product_question",
        text="黑色29还有吗",
        entities=[*named, entity("colour", "black"), entity("size", "29")],
    )
    assert responses(out) == ["utter_product_variant_out_of_stock"]
    nonesuch, _ = await run(
        ActionAnswerProductQuestion(),
        intent="product_question",
        text="有XXL吗",
        entities=[*named, entity("size", "XXL")],
    )
    assert responses(nonesuch) == ["utter_product_no_such_variant"]


async def test_size_advice_from_the_size_chart_on_a_page(app_db: str) -> None:
    dispatcher, _ = await run(
        ActionAnswerProductQuestion(),
        intent="product_question",
        text="我175 140斤穿什么码",
        page={"product_id": "P-OXF"},
    )
    assert responses(dispatcher) == ["utter_product_size_advice"]
    assert dispatcher.messages[0]["size"] == "L"
    ask, _ = await run(
        ActionAnswerProductQuestion(),
        intent="product_question",
        text="what size should I get",
        page={"product_id": "P-OXF"},
        language="en",
    )
    assert responses(ask) == ["utter_ask_body_measurements"]
    tie, _ = await run(
        ActionAnswerProductQuestion(),
        intent="product_question",
        text="领带选什么尺码",
        page={"product_id": "P-SLK"},
    )
    assert responses(tie) == ["utter_product_one_size"]


async def test_material_and_care_in_english(app_db: str) -> None:
    dispatcher, _ = await run(
        ActionAnswerProductQuestion(),
        intent="product_question",
        text="what material is the silk tie and how do I wash it",
        entities=[entity("product", "silk tie")],
        language="en",
    )
    assert responses(dispatcher) == ["utter_product_material", "utter_product_care"]
    assert dispatcher.messages[0]["material"] == "100% mulberry silk"
    assert "dry clean" in dispatcher.messages[1]["care"]


async def test_no_product_known_asks_which_then_answers_the_question(app_db: str) -> None:
    asked, events = await run(
        ActionAnswerProductQuestion(), intent="product_question", text="是纯棉的吗"
    )
    assert responses(asked) == ["utter_ask_which_product"]
    assert slot(events, "pending") == "product_choice"
    answered, events = await run(
        ActionAnswerProductQuestion(),
        intent="inform",
        text="牛津纺衬衫",
        entities=[entity("product", "牛津纺衬衫")],
        pending="product_choice",
        detail=slot(events, "pending_detail"),
    )
    assert responses(answered) == ["utter_product_material"]
    assert answered.messages[0]["material"] == "100%纯棉"
    assert slot(events, "pending") is None


async def test_a_product_the_store_does_not_sell(app_db: str) -> None:
    dispatcher, _ = await run(
        ActionAnswerProductQuestion(),
        intent="product_question",
        text="连衣裙有M码吗",
        entities=[entity("product", "连衣裙")],
    )
    assert responses(dispatcher) == ["utter_product_not_found"]


async def test_a_general_question_gets_a_summary(app_db: str) -> None:
    dispatcher, _ = await run(
        ActionAnswerProductQuestion(),
        intent="product_question",
        text="介绍一下这款",
        page={"product_id": "P-CHN"},
    )
    assert responses(dispatcher) == ["utter_product_summary"]


async def test_recommendations_go_with_the_page_product(app_db: str) -> None:
    dispatcher, _ = await run(
        ActionRecommendProducts(),
        intent="product_recommendation",
        text="配什么好看",
        page={"product_id": "P-OXF"},
    )
    assert responses(dispatcher) == ["utter_recommendations_with"]
    assert "真丝领带" in dispatcher.messages[0]["products"]
    best, _ = await run(ActionRecommendProducts(), intent="product_recommendation")
    assert responses(best) == ["utter_recommendations"] and best.messages[0]["products"]


async def test_shipping_rules_from_configuration(app_db: str) -> None:
    dispatcher, _ = await run(ActionShippingInfo(), intent="shipping_info", language="en")
    message = dispatcher.messages[0]
    assert message["response"] == "utter_shipping_info"
    assert message["fee"] == "¥10.00" and message["threshold"] == "¥99.00"
    assert "SF Express" in message["carriers"]
    assert "Jiangsu, Zhejiang, Shanghai, Anhui: 1-2" in message["times"]


async def test_promotions_coupons_and_no_haggling(app_db: str) -> None:
    zhang = customer_id("C00001")  # gold, with a member coupon
    dispatcher, _ = await run(
        ActionCouponsPromotions(), intent="coupon_promotion", text="能便宜点吗", customer_id=zhang
    )
    assert responses(dispatcher) == [
        "utter_no_haggling",
        "utter_promotions",
        "utter_member_coupons",
    ]
    assert "黄金及以上会员满500减50" in dispatcher.messages[1]["promotions"]
    assert dispatcher.messages[2]["amount"] == "¥20.00"
    anonymous, _ = await run(ActionCouponsPromotions(), intent="coupon_promotion", text="有优惠吗")
    assert responses(anonymous) == ["utter_promotions", "utter_coupons_need_login"]
    assert "黄金" not in anonymous.messages[0]["promotions"]
    lina, _ = await run(
        ActionCouponsPromotions(), intent="coupon_promotion", customer_id=customer_id("C00003")
    )
    assert responses(lina)[-1] == "utter_no_member_coupons"


async def test_membership_level_points_and_use(app_db: str) -> None:
    dispatcher, _ = await run(
        ActionMembershipPoints(),
        intent="membership_points",
        customer_id=customer_id("C00002"),
        language="en",
    )
    message = dispatcher.messages[0]
    assert message["response"] == "utter_membership"
    assert message["level"] == "VIP member" and message["discount"] == 8
    assert message["per_yuan"] == 100
    anonymous, _ = await run(ActionMembershipPoints(), intent="membership_points")
    assert responses(anonymous) == ["utter_membership_anonymous"]


async def test_a_name_that_fits_several_products_asks_which(app_db: str) -> None:
    asked, events = await run(
        ActionAnswerProductQuestion(),
        intent="product_question",
        text="这件衬衫是纯棉的吗",
        entities=[entity("product", "衬衫")],
    )
    assert responses(asked) == ["utter_ask_which_of_products"]
    assert "亚麻休闲衬衫" in asked.messages[0]["products"]
    answered, _ = await run(
        ActionAnswerProductQuestion(),
        intent="inform",
        text="亚麻休闲衬衫",
        pending="product_choice",
        detail=slot(events, "pending_detail"),
    )
    assert responses(answered) == ["utter_product_material"]
    assert answered.messages[0]["material"] == "100%亚麻"
