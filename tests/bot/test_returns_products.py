"""Returns and exchanges (7-day no-reason rule, exclusions, requests) and product facts."""

from __future__ import annotations

import zlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.errors import NotEligible
from bot.models import Customer, Order, OrderItem, ServiceRequest, Shipment, Variant
from bot.services.outcomes import Turn
from bot.services.policies import recommend_size, shipping_policy
from bot.services.products import (
    aspects,
    body_measurements,
    care_code,
    find_product,
    match_products,
    size_advice,
)
from bot.services.returns import (
    check_return,
    create_request,
    exchange_option,
    is_quality_problem,
    latest_request,
    size_in_text,
    size_shift,
)
from bot.settings import Settings
from tests.conftest import FIXED_NOW, fixed_clock


def _delivered_order(session: Session, sku: str, *, days_ago: float) -> tuple[Customer, Order]:
    """A fresh customer with one delivered order of ``sku``, ``days_ago`` days ago."""
    variant = session.scalars(select(Variant).where(Variant.sku == sku)).one()
    customer = Customer(external_id=f"T-{sku}-{days_ago}", name="测试", language="zh")
    delivered = FIXED_NOW - timedelta(days=days_ago)
    order = Order(
        order_number=f"9{zlib.crc32(f'{sku}{days_ago}'.encode()):011d}",
        customer=customer,
        status="delivered",
        total_fen=variant.price_fen,
        phone="13800000000",
        address="上海市",
        placed_at=delivered - timedelta(days=3),
        paid_at=delivered - timedelta(days=3),
    )
    order.items.append(OrderItem(variant=variant, quantity=1, unit_price_fen=variant.price_fen))
    order.shipment = Shipment(
        carrier="sf",
        status="delivered",
        promised_at=delivered,
        estimated_at=delivered,
        shipped_at=delivered - timedelta(days=2),
        delivered_at=delivered,
    )
    session.add(order)
    session.flush()
    return customer, order


def test_no_reason_return_within_seven_days_of_delivery(session: Session) -> None:
    customer, order = _delivered_order(session, "P-OXF-BLUE-M", days_ago=3)
    check = check_return(session=session, customer_id=customer.id, clock=fixed_clock)
    assert check.eligible and check.order_number == order.order_number
    assert check.deadline == order.shipment.delivered_at + timedelta(days=7)  # type: ignore[union-attr]
    assert check.refund_fen == 19900


def test_past_the_window_is_refused_unless_it_is_a_quality_problem(session: Session) -> None:
    customer, _ = _delivered_order(session, "P-OXF-WHITE-L", days_ago=10)
    late = check_return(session=session, customer_id=customer.id, clock=fixed_clock)
    assert not late.eligible and late.reason == "window_passed"
    quality = check_return(
        session=session, customer_id=customer.id, quality=True, clock=fixed_clock
    )
    assert quality.eligible


@pytest.mark.parametrize(
    ("sku", "reason"), [("P-UND-BLACK-M", "excluded_category"), ("P-EMB-WHITE-M", "customised")]
)
def test_underwear_and_customised_goods_are_excluded(
    session: Session, sku: str, reason: str
) -> None:
    customer, _ = _delivered_order(session, sku, days_ago=1)
    check = check_return(session=session, customer_id=customer.id, clock=fixed_clock)
    assert not check.eligible and check.reason == reason
    # ...but a defect may still go back.
    assert check_return(
        session=session, customer_id=customer.id, quality=True, clock=fixed_clock
    ).eligible


def test_excluded_categories_are_configurable(session: Session) -> None:
    customer, _ = _delivered_order(session, "P-SLK-RED-F", days_ago=1)
    policy = Settings(no_reason_return_excluded_categories=["tie"])
    check = check_return(
        session=session, customer_id=customer.id, settings=policy, clock=fixed_clock
    )
    assert check.reason == "excluded_category"


def test_an_undelivered_order_cannot_go_back_yet(session: Session) -> None:
    lina = session.scalars(select(Customer).where(Customer.external_id == "C00003")).one()
    latest = session.scalars(
        select(Order).where(Order.customer_id == lina.id).order_by(Order.placed_at.desc())
    ).first()
    assert latest is not None
    check = check_return(
        session=session, customer_id=lina.id, order_number=latest.order_number, clock=fixed_clock
    )
    assert check.reason == "not_delivered"


def test_a_return_request_is_created_once_per_message(session: Session) -> None:
    customer, order = _delivered_order(session, "P-CHN-KHAKI-32", days_ago=2)
    check = check_return(session=session, customer_id=customer.id, clock=fixed_clock)
    turn = Turn(message_id="msg-return", customer_id=customer.id)
    request = create_request(
        session=session,
        turn=turn,
        kind="return",
        order_number=order.order_number,
        item_id=check.line.item_id,
        clock=fixed_clock,
    )
    again = create_request(
        session=session,
        turn=turn,
        kind="return",
        order_number=order.order_number,
        item_id=check.line.item_id,
        clock=fixed_clock,
    )
    assert request.number == again.number and again.replayed
    assert request.refund_fen == 29900 and request.status == "requested"
    count = session.scalar(
        select(func.count()).select_from(ServiceRequest).where(ServiceRequest.order_id == order.id)
    )
    assert count == 1
    assert latest_request(session=session, customer_id=customer.id) == request
    # A second message for the same item finds the open request.
    recheck = check_return(session=session, customer_id=customer.id, clock=fixed_clock)
    assert recheck.reason == "already_requested"
    with pytest.raises(NotEligible):
        create_request(
            session=session,
            turn=Turn("msg-return-2", customer.id),
            kind="return",
            order_number=order.order_number,
            item_id=check.line.item_id,
            clock=fixed_clock,
        )


def test_exchange_one_size_up_holds_the_stock(session: Session) -> None:
    customer, order = _delivered_order(session, "P-OXF-PINK-M", days_ago=2)
    target_variant = session.scalars(select(Variant).where(Variant.sku == "P-OXF-PINK-L")).one()
    target_variant.stock = 5
    check = check_return(session=session, customer_id=customer.id, clock=fixed_clock)
    option = exchange_option(
        session=session, item_id=check.line.item_id, shift=size_shift("换大一码")
    )
    assert option is not None and option.size == "L" and option.colour == "pink"
    request = create_request(
        session=session,
        turn=Turn("msg-exchange", customer.id),
        kind="exchange",
        order_number=order.order_number,
        item_id=check.line.item_id,
        exchange_variant_id=option.variant_id,
        clock=fixed_clock,
    )
    assert request.kind == "exchange" and request.target_size == "L"
    assert target_variant.stock == 4


def test_exchange_for_something_out_of_stock_is_refused(session: Session) -> None:
    customer, order = _delivered_order(session, "P-OXF-PINK-S", days_ago=2)
    wanted = session.scalars(select(Variant).where(Variant.sku == "P-OXF-BLUE-S")).one()
    wanted.stock = 0
    check = check_return(session=session, customer_id=customer.id, clock=fixed_clock)
    option = exchange_option(session=session, item_id=check.line.item_id, colour="blue")
    assert option is not None and option.stock == 0
    with pytest.raises(NotEligible) as err:
        create_request(
            session=session,
            turn=Turn("msg-exchange-oos", customer.id),
            kind="exchange",
            order_number=order.order_number,
            item_id=check.line.item_id,
            exchange_variant_id=option.variant_id,
            clock=fixed_clock,
        )
    assert err.value.reason == "out_of_stock"


def test_no_size_beyond_the_largest(session: Session) -> None:
    customer, _ = _delivered_order(session, "P-OXF-BLUE-XXL", days_ago=2)
    check = check_return(session=session, customer_id=customer.id, clock=fixed_clock)
    assert exchange_option(session=session, item_id=check.line.item_id, shift=1) is None


def test_text_helpers() -> None:
    assert size_in_text("size s") == "S" and size_in_text("要XL的") == "XL"
    assert size_in_text("32码") == "32" and size_in_text("small") is None
    assert size_shift("能换个大一码的吗") == 1 and size_shift("exchange for a smaller size") == -1
    assert size_shift("换个颜色") == 0
    assert is_quality_problem("衣服破了个洞") and is_quality_problem("it arrived damaged")
    assert not is_quality_problem("不想要了")


def test_products_by_name_page_and_parts_of_names(session: Session) -> None:
    assert find_product(session=session, name="牛津纺衬衫").external_id == "P-OXF"  # type: ignore[union-attr]
    assert find_product(session=session, name="Oxford Shirt").external_id == "P-OXF"  # type: ignore[union-attr]
    assert find_product(session=session, name="真丝领带").external_id == "P-SLK"  # type: ignore[union-attr]
    assert find_product(session=session, external_id="P-CHN").name_en == "Chinos"  # type: ignore[union-attr]
    assert find_product(session=session, name="连衣裙") is None
    # A name that fits several products is no answer, unless the page says which.
    assert len(match_products(session=session, name="衬衫")) >= 5
    assert find_product(session=session, name="衬衫") is None
    assert find_product(session=session, name="衬衫", external_id="P-LIN").external_id == "P-LIN"  # type: ignore[union-attr]
    assert find_product(session=session, name="衬衫", external_id="P-CHN") is None
    on_page = find_product(session=session, name="连衣裙", external_id="P-BLZ")
    assert on_page is not None and on_page.external_id == "P-BLZ"


def test_stock_and_price_of_a_product(session: Session) -> None:
    product = find_product(session=session, external_id="P-OXF")
    assert product is not None
    assert product.price_range == (19900, 19900)
    stock = session.scalar(select(Variant.stock).where(Variant.sku == "P-OXF-BLUE-M"))
    assert bool(product.in_stock(size="M", colour="blue")) == bool(stock)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我175 140斤穿什么码", (175, 70)),
        ("身高165 体重50公斤", (165, 50)),
        ("160cm 95斤", (160, 47.5)),
        ("175cm 70kg", (175, 70)),
        ("height 160 weight 50", (160, 50)),
        ("i'm 5'10, 170 lbs", (178, 77.1)),
        ("1.80米 80公斤", (180, 80)),
    ],
)
def test_body_measurements(text: str, expected: tuple[float, float]) -> None:
    assert body_measurements(text) == expected


def test_size_chart() -> None:
    assert recommend_size("shirt", 175, 70) == "L"
    assert recommend_size("shirt", 160, 80) == "XL"  # the larger of the two wins
    assert recommend_size("jacket", 190, None) == "XXL"
    assert recommend_size("trousers", 175, 68) == "32"
    assert recommend_size("trousers", 175, None) is None
    assert recommend_size("tie", None, None) == "F"


def test_size_advice_for_a_product(session: Session) -> None:
    product = find_product(session=session, external_id="P-OXF")
    assert product is not None
    assert size_advice(product, "我175 140斤穿什么码") == "L"
    assert size_advice(product, "穿什么码") is None


def test_aspects_and_care() -> None:
    assert aspects("这个有货吗") == ["stock"]
    assert aspects("多少钱") == ["price"]
    assert aspects("是纯棉的吗") == ["material"]
    assert aspects("能机洗吗") == ["care"]
    assert aspects("我175 140斤穿什么码") == ["size"]
    assert aspects("is this in stock in M") == ["stock"]
    assert care_code("100% mulberry silk") == "silk" and care_code("cotton poplin") == "cotton"


def test_shipping_policy_comes_from_settings() -> None:
    policy = shipping_policy(Settings(shipping_fee_fen=800, free_shipping_threshold_fen=19900))
    assert policy.fee_fen == 800 and policy.free_threshold_fen == 19900
    assert "sf" in policy.carriers and dict(policy.delivery_days)["east"] == "1-2"
