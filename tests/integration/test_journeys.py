"""Service journeys end to end, in Chinese and English: through the gateway's WebSocket,
against the real Rasa server, action server and database. Replies and stored rows.

Each test takes its own customer from the seeded store (chosen by what their latest order
looks like), so tests do not depend on each other's changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from tests.support.chat_client import ChatClient
from tests.support.stack import Stack

_taken: set[str] = {"C00001", "C00002", "C00003", "C00004"}


def texts(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m["text"] for m in messages)


def payloads(messages: list[dict[str, Any]]) -> list[str]:
    return [b["payload"] for m in messages for b in (m.get("buttons") or [])]


def _latest_orders(db: sa.Engine) -> list[dict[str, Any]]:
    with db.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT c.external_id, c.id AS customer_id, o.id AS order_id, o.order_number, "
                "o.status, o.total_fen, s.status AS ship_status, s.promised_at, "
                "s.estimated_at, s.delivered_at, s.delay_reason "
                'FROM "order" o JOIN customer c ON c.id = o.customer_id '
                "JOIN shipment s ON s.order_id = o.id "
                'WHERE o.placed_at = (SELECT max(o2.placed_at) FROM "order" o2 '
                "WHERE o2.customer_id = o.customer_id) ORDER BY c.external_id"
            )
        )
        return [dict(r) for r in rows.mappings()]


def _when(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def other_sizes_in_stock(db: sa.Engine, order_id: int) -> list[str]:
    """Sizes in stock, same colour, of the order's first line's product."""
    with db.connect() as conn:
        return list(
            conn.scalars(
                sa.text(
                    "SELECT v2.size FROM order_item i JOIN variant v ON v.id = i.variant_id "
                    "JOIN variant v2 ON v2.product_id = v.product_id AND v2.colour = v.colour "
                    "AND v2.id != v.id AND v2.stock > 0 WHERE i.id = (SELECT min(id) FROM "
                    "order_item WHERE order_id = :o) ORDER BY v2.id"
                ),
                {"o": order_id},
            )
        )


def take(
    db: sa.Engine,
    want: str,
    *,
    external_id: str | None = None,
    accept: Callable[[dict[str, Any]], bool] = lambda row: True,
) -> dict[str, Any]:
    """A customer whose latest order is ``late_unshipped``, ``late_shipped``, ``unshipped``
    or ``recently_delivered`` (and which no other test took)."""
    for row in _latest_orders(db):
        if external_id and row["external_id"] != external_id:
            continue
        if not external_id and row["external_id"] in _taken:
            continue
        late = _when(row["estimated_at"]) > _when(row["promised_at"])
        waiting = row["status"] == "paid" and row["ship_status"] == "awaiting_pickup"
        recent = row["delivered_at"] is not None and _when(row["delivered_at"]) > datetime.now(
            timezone.utc
        ) - timedelta(days=5)
        ok = {
            "late_unshipped": late and waiting,
            "late_shipped": late and row["status"] == "shipped",
            "unshipped": waiting and not late,
            "recently_delivered": row["status"] == "delivered" and recent,
        }[want]
        if ok and accept(row):
            _taken.add(row["external_id"])
            return row
    raise AssertionError(f"no {want} customer in the seed")


def outcome_kinds(db: sa.Engine, customer_id: int) -> list[str]:
    with db.connect() as conn:
        return list(
            conn.scalars(
                sa.text("SELECT kind FROM outcome WHERE customer_id = :c ORDER BY id"),
                {"c": customer_id},
            )
        )


def order_row(db: sa.Engine, order_id: int) -> dict[str, Any]:
    with db.connect() as conn:
        return dict(
            conn.execute(
                sa.text('SELECT status, delay_accepted_at, note FROM "order" WHERE id = :o'),
                {"o": order_id},
            )
            .mappings()
            .one()
        )


def requests(db: sa.Engine, customer_id: int) -> list[dict[str, Any]]:
    with db.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT kind, status, refund_fen, exchange_variant_id FROM service_request "
                "WHERE customer_id = :c ORDER BY id"
            ),
            {"c": customer_id},
        )
        return [dict(r) for r in rows.mappings()]


async def test_delay_accepted_in_chinese(stack: Stack, db: sa.Engine, shopper: ChatClient) -> None:
    order = take(db, "late_unshipped", external_id="C00003")  # 李娜: courier suspended
    await shopper.connect(customer_token=stack.customer_token("C00003"))
    script = await shopper.say("我的订单怎么还没发货")
    reply = texts(script)
    assert "非常抱歉" in reply and order["order_number"] in reply
    assert "快递公司暂停揽收" in reply and "请问是否可以接受延迟发货" in reply
    assert payloads(script) == ["/affirm", "/deny"]
    accepted = texts(await shopper.say("可以接受", payload="/affirm"))
    assert "优先为您发货" in accepted
    assert order_row(db, order["order_id"])["delay_accepted_at"] is not None
    # She bought the blue shirt and red tie and consented to offers: the blazer follows.
    assert "根据您的购买记录" in accepted and "海军蓝西装外套" in accepted
    assert outcome_kinds(db, order["customer_id"]) == ["delay_accepted", "recommendation_offered"]


async def test_delay_declined_in_chinese_cancels_with_full_refund(
    stack: Stack, db: sa.Engine, shopper: ChatClient
) -> None:
    order = take(db, "late_unshipped")
    await shopper.connect(customer_token=stack.customer_token(order["external_id"]))
    asked = await shopper.say("都五天了怎么还没发货")
    assert "请问是否可以接受延迟发货" in texts(asked)
    offered = await shopper.say("不能接受", payload="/deny")
    assert "全额" in texts(offered) and "/cancel_order" in payloads(offered)
    done = texts(await shopper.say("取消订单并全额退款", payload="/cancel_order"))
    assert "已为您取消订单" in done and f"¥{order['total_fen'] / 100:,.2f}" in done
    assert order_row(db, order["order_id"])["status"] == "cancelled"
    assert outcome_kinds(db, order["customer_id"]) == ["cancelled"]


async def test_delay_accepted_in_english(stack: Stack, db: sa.Engine, shopper: ChatClient) -> None:
    order = take(db, "late_shipped", external_id="C00002")  # Emily Chen: bad weather
    await shopper.connect(customer_token=stack.customer_token("C00002"), language="en")
    script = await shopper.say("my package is late, why?")
    reply = texts(script)
    assert "sorry" in reply.lower() and "bad weather" in reply
    assert order["order_number"] in reply and "acceptable" in reply
    accepted = texts(await shopper.say("Yes, that's fine", payload="/affirm"))
    assert "Thank you" in accepted
    assert order_row(db, order["order_id"])["delay_accepted_at"] is not None
    assert "you might like" in accepted  # she consented to offers in the demo data
    assert outcome_kinds(db, order["customer_id"]) == ["delay_accepted", "recommendation_offered"]


async def test_delay_declined_in_english_takes_the_coupon(
    stack: Stack, db: sa.Engine, shopper: ChatClient
) -> None:
    order = take(db, "late_shipped")
    await shopper.connect(customer_token=stack.customer_token(order["external_id"]), language="en")
    assert "acceptable" in texts(await shopper.say("my order is late"))
    offered = await shopper.say("No, it isn't", payload="/deny")
    assert "coupon" in texts(offered) and "/coupon_promotion" in payloads(offered)
    done = texts(await shopper.say("Wait, take the coupon", payload="/coupon_promotion"))
    assert "¥20.00 coupon" in done
    with db.connect() as conn:
        coupons = conn.execute(
            sa.text("SELECT amount_fen, source FROM coupon WHERE order_id = :o"),
            {"o": order["order_id"]},
        ).all()
    assert [tuple(c) for c in coupons] == [(2000, "delay_compensation")]
    assert outcome_kinds(db, order["customer_id"]) == ["coupon_issued"]


async def test_cancellation_in_chinese(stack: Stack, db: sa.Engine, shopper: ChatClient) -> None:
    order = take(db, "unshipped")
    await shopper.connect(customer_token=stack.customer_token(order["external_id"]))
    asked = await shopper.say("我要取消订单")
    assert order["order_number"] in texts(asked) and "确定要取消吗" in texts(asked)
    done = texts(await shopper.say("确定", payload="/affirm"))
    assert "已为您取消订单" in done
    assert order_row(db, order["order_id"])["status"] == "cancelled"
    assert outcome_kinds(db, order["customer_id"]) == ["cancelled"]


async def test_cancellation_in_english(stack: Stack, db: sa.Engine, shopper: ChatClient) -> None:
    order = take(db, "unshipped")
    await shopper.connect(customer_token=stack.customer_token(order["external_id"]), language="en")
    asked = texts(await shopper.say("I want to cancel my order"))
    assert order["order_number"] in asked and "Shall I cancel it?" in asked
    done = texts(await shopper.say("yes please"))
    assert "is cancelled" in done
    assert order_row(db, order["order_id"])["status"] == "cancelled"


async def test_a_shipped_order_cannot_be_cancelled(
    stack: Stack, db: sa.Engine, shopper: ChatClient
) -> None:
    order = take(db, "late_shipped")
    await shopper.connect(customer_token=stack.customer_token(order["external_id"]))
    reply = texts(await shopper.say("我要取消订单"))
    assert "已经发货" in reply and "退货" in reply
    assert order_row(db, order["order_id"])["status"] == "shipped"


async def test_return_in_chinese(stack: Stack, db: sa.Engine, shopper: ChatClient) -> None:
    order = take(db, "recently_delivered")
    await shopper.connect(customer_token=stack.customer_token(order["external_id"]))
    asked = texts(await shopper.say("我要退货"))
    assert "7天无理由" in asked and order["order_number"] in asked
    done = texts(await shopper.say("确定", payload="/affirm"))
    assert "退货申请已提交" in done
    rows = requests(db, order["customer_id"])
    assert [(r["kind"], r["status"]) for r in rows] == [("return", "requested")]
    assert outcome_kinds(db, order["customer_id"]) == ["return_requested"]


async def test_return_in_english(stack: Stack, db: sa.Engine, shopper: ChatClient) -> None:
    order = take(db, "recently_delivered")
    await shopper.connect(customer_token=stack.customer_token(order["external_id"]), language="en")
    asked = texts(await shopper.say("I want to return my order and get a refund"))
    assert "7-day no-reason return" in asked
    done = texts(await shopper.say("Yes, please", payload="/affirm"))
    assert "Your return is open" in done
    assert [r["kind"] for r in requests(db, order["customer_id"])] == ["return"]


async def _exchange(stack: Stack, db: sa.Engine, shopper: ChatClient, lang: str) -> None:
    order = take(
        db, "recently_delivered", accept=lambda r: bool(other_sizes_in_stock(db, r["order_id"]))
    )
    sizes = other_sizes_in_stock(db, order["order_id"])
    await shopper.connect(
        customer_token=stack.customer_token(order["external_id"]),
        **({"language": "en"} if lang == "en" else {}),
    )
    first = await shopper.say(
        "能换个别的尺码吗" if lang == "zh" else "can I exchange it for another size?"
    )
    assert order["order_number"] in texts(first)
    proposed = texts(await shopper.say(f"{sizes[0]}码" if lang == "zh" else f"size {sizes[0]}"))
    assert ("确认提交换货申请吗" if lang == "zh" else "Shall I open the exchange?") in proposed
    done = texts(await shopper.say("确定" if lang == "zh" else "Yes, please", payload="/affirm"))
    assert ("换货申请已提交" if lang == "zh" else "Your exchange is open") in done
    rows = requests(db, order["customer_id"])
    assert [r["kind"] for r in rows] == ["exchange"] and rows[0]["exchange_variant_id"]


async def test_exchange_in_chinese(stack: Stack, db: sa.Engine, shopper: ChatClient) -> None:
    await _exchange(stack, db, shopper, "zh")


async def test_exchange_in_english(stack: Stack, db: sa.Engine, shopper: ChatClient) -> None:
    await _exchange(stack, db, shopper, "en")


async def test_product_question_on_a_product_page_in_chinese(
    stack: Stack, shopper: ChatClient
) -> None:
    await shopper.connect(page={"product_id": "P-OXF", "url": "/products/P-OXF"})
    price = texts(await shopper.say("这件多少钱"))
    assert "牛津纺衬衫" in price and "¥199.00" in price
    size = texts(await shopper.say("我175 140斤穿什么码"))
    assert "L 码" in size


async def test_product_question_on_a_product_page_in_english(
    stack: Stack, shopper: ChatClient
) -> None:
    await shopper.connect(language="en", page={"product_id": "P-SLK"})
    reply = texts(await shopper.say("what material is this?"))
    assert "Silk tie" in reply and "mulberry silk" in reply


async def test_complaint_is_recorded_and_a_person_offered(
    stack: Stack, db: sa.Engine, shopper: ChatClient
) -> None:
    welcome = await shopper.connect(customer_token=stack.customer_token("C00004"), language="en")
    reply = texts(await shopper.say("this is unacceptable, the quality is terrible"))
    assert "sorry" in reply.lower() and "human colleague" in reply
    with db.connect() as conn:
        flag = conn.scalar(
            sa.text("SELECT flag_reason FROM conversation WHERE id = :c"),
            {"c": welcome["conversation_id"]},
        )
    assert flag == "handoff:complaint"


async def test_invoice_request_in_chinese_with_a_tax_id(
    stack: Stack, db: sa.Engine, shopper: ChatClient
) -> None:
    welcome = await shopper.connect(customer_token=stack.customer_token("C00001"))
    asked = await shopper.say("能开发票吗")
    assert "发票抬头" in texts(asked)
    assert "税号" in texts(await shopper.say("杭州某某科技有限公司"))
    done = texts(await shopper.say("91330100MA2B3C4D5E"))
    assert "已为订单" in done and "91330100MA2B3C4D5E" in done  # still in Chinese
    with db.connect() as conn:
        detail = conn.scalar(
            sa.text(
                "SELECT o.detail FROM outcome o WHERE o.kind = 'invoice_requested' "
                "AND o.conversation_id = :c"
            ),
            {"c": welcome["conversation_id"]},
        )
    detail = json.loads(detail) if isinstance(detail, str) else detail
    assert detail["title"] == "杭州某某科技有限公司" and detail["tax_id"] == "91330100MA2B3C4D5E"


async def test_address_change_in_english(stack: Stack, db: sa.Engine, shopper: ChatClient) -> None:
    order = take(db, "unshipped")
    await shopper.connect(customer_token=stack.customer_token(order["external_id"]), language="en")
    asked = texts(await shopper.say("I need to change my delivery address"))
    assert order["order_number"] in asked and "new delivery address" in asked
    done = texts(await shopper.say("88 Century Avenue, Pudong, Shanghai"))
    assert "new address" in done
    with db.connect() as conn:
        address = conn.scalar(
            sa.text('SELECT address FROM "order" WHERE id = :o'), {"o": order["order_id"]}
        )
    assert address == "88 Century Avenue, Pudong, Shanghai"
    assert outcome_kinds(db, order["customer_id"]) == ["address_changed"]


async def test_an_anonymous_visitor_hears_about_the_delay_after_the_phone_digits(
    stack: Stack, db: sa.Engine, shopper: ChatClient
) -> None:
    # Read-only: 李娜's late order (courier suspended), without her login.
    with db.connect() as conn:
        row = (
            conn.execute(
                sa.text(
                    'SELECT o.order_number, o.phone FROM "order" o JOIN customer c '
                    "ON c.id = o.customer_id WHERE c.external_id = 'C00003' "
                    "ORDER BY o.placed_at DESC LIMIT 1"
                )
            )
            .mappings()
            .one()
        )
    await shopper.connect()
    assert "订单号" in texts(await shopper.say("我的快递怎么还没到"))
    assert "后四位" in texts(await shopper.say(row["order_number"]))
    answer = texts(await shopper.say(f"尾号{row['phone'][-4:]}"))
    assert row["order_number"] in answer
    assert "非常抱歉" in answer and "快递公司暂停揽收" in answer


async def test_a_note_on_an_unshipped_order_in_chinese(
    stack: Stack, db: sa.Engine, shopper: ChatClient
) -> None:
    order = take(db, "unshipped")
    await shopper.connect(customer_token=stack.customer_token(order["external_id"]))
    asked = texts(await shopper.say("帮我订单加个备注"))
    assert order["order_number"] in asked and "备注" in asked
    done = texts(await shopper.say("不要放快递柜，送到门口"))
    assert "加上备注" in done
    assert order_row(db, order["order_id"])["note"] == "不要放快递柜，送到门口"
    assert outcome_kinds(db, order["customer_id"]) == ["note_changed"]
