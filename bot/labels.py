"""The one bilingual catalogue of labels for codes stored in the database.

Actions and pages show ``label("order_status", order.status, "en")``; nothing else spells
these out. Unknown codes come back as the code itself rather than failing a reply.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["order_status", "shipment_status", "carrier", "delay_reason", "colour", "category"]

LABELS: dict[str, dict[str, tuple[str, str]]] = {
    # code: (zh, en)
    "order_status": {
        "pending_payment": ("待付款", "awaiting payment"),
        "paid": ("已付款，待发货", "paid, awaiting shipment"),
        "shipped": ("已发货", "shipped"),
        "delivered": ("已签收", "delivered"),
        "cancelled": ("已取消", "cancelled"),
        "refunded": ("已退款", "refunded"),
    },
    "shipment_status": {
        "awaiting_pickup": ("待揽收", "waiting for pickup"),
        "picked_up": ("已揽收", "picked up by the courier"),
        "in_transit": ("运输中", "in transit"),
        "out_for_delivery": ("派送中", "out for delivery"),
        "delivered": ("已签收", "delivered"),
        "exception": ("物流异常", "delivery problem"),
    },
    "carrier": {
        "sf": ("顺丰速运", "SF Express"),
        "zto": ("中通快递", "ZTO Express"),
        "yto": ("圆通速递", "YTO Express"),
        "jd": ("京东物流", "JD Logistics"),
        "ems": ("中国邮政EMS", "China Post EMS"),
    },
    "delay_reason": {
        "bad_weather": ("受恶劣天气影响", "bad weather"),
        # English labels are noun phrases: "the delay is due to {reason}".
        "courier_suspension": ("快递公司暂停揽收", "the courier suspending pickups"),
        "peak_season": ("大促期间包裹量激增", "the peak-season surge in parcels"),
        "out_of_stock": ("商品暂时缺货，正在补货", "a temporary stock shortage"),
        "address_issue": ("收货地址需要核实", "a delivery address that needs checking"),
    },
    "colour": {
        "blue": ("蓝色", "blue"),
        "light-blue": ("浅蓝色", "light blue"),
        "navy": ("藏青色", "navy"),
        "white": ("白色", "white"),
        "pink": ("粉色", "pink"),
        "beige": ("米色", "beige"),
        "black": ("黑色", "black"),
        "red": ("红色", "red"),
        "burgundy": ("酒红色", "burgundy"),
        "grey": ("灰色", "grey"),
        "green": ("绿色", "green"),
        "camel": ("驼色", "camel"),
        "khaki": ("卡其色", "khaki"),
        "olive": ("橄榄绿", "olive"),
    },
    "category": {
        "shirt": ("衬衫", "Shirts"),
        "tie": ("领带", "Ties"),
        "jacket": ("外套", "Jackets"),
        "trousers": ("裤装", "Trousers"),
    },
}

LANGUAGES = ("zh", "en")


def label(kind: Kind, code: str | None, language: str) -> str:
    """The label of ``code`` in ``language`` ("zh" or "en"; anything else means "zh")."""
    if code is None:
        return ""
    pair = LABELS[kind].get(code)
    if pair is None:
        return code
    return pair[1] if language == "en" else pair[0]


def codes(kind: Kind) -> tuple[str, ...]:
    """All codes known for ``kind`` (used by the seed and by validation)."""
    return tuple(LABELS[kind])
